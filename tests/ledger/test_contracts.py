"""AccessMarket and GeneToken against a real anvil: every function and revert path."""

from __future__ import annotations

import dataclasses

import pytest
from web3 import Web3
from web3.logs import DISCARD

from ledger import vouchers
from ledger.artifacts import load_artifact
from ledger.vouchers import request_id_bytes
from tests.ledger.contracts_env import MarketEnv, deploy_market, mock_artifact, reverts_with

pytestmark = pytest.mark.integration


def escrow_status(env: MarketEnv, voucher: vouchers.Voucher) -> int:
    return int(env.market.functions.escrows(request_id_bytes(voucher.requestId)).call()[2])


def test_pay_moves_the_amount_into_escrow(env: MarketEnv) -> None:
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    before = env.balance(env.buyer.address)
    receipt = env.pay(voucher)
    assert env.balance(env.buyer.address) == before - voucher.amount
    assert env.balance(env.market.address) == voucher.amount
    (paid,) = env.market.events.Paid().process_receipt(receipt, errors=DISCARD)
    assert Web3.to_hex(paid["args"]["requestId"]) == voucher.requestId
    assert paid["args"]["amount"] == voucher.amount
    assert escrow_status(env, voucher) == 1


def test_pay_with_permit_needs_no_prior_approval(env: MarketEnv) -> None:
    voucher = env.voucher()
    deadline = env.now() + 600
    v, r, s_ = env.permit(env.buyer, voucher.amount, deadline)
    assert env.token.functions.allowance(env.buyer.address, env.market.address).call() == 0
    env.send(
        env.buyer,
        env.market.functions.payWithPermit(
            voucher.as_tuple(),
            env.sign(voucher),
            deadline,
            v,
            r,
            s_,
        ),
    )
    assert env.balance(env.market.address) == voucher.amount


def test_a_voucher_signed_by_someone_else_is_refused(env: MarketEnv) -> None:
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    reverts_with("WrongSigner()", lambda: env.pay(voucher, signer=env.other))


def test_an_expired_voucher_is_refused(env: MarketEnv) -> None:
    voucher = env.voucher(validUntil=env.now() - 1)
    env.approve(env.buyer, voucher.amount)
    reverts_with("VoucherExpired()", lambda: env.pay(voucher))


def test_only_the_buyer_can_pay(env: MarketEnv) -> None:
    voucher = env.voucher()
    env.approve(env.other, voucher.amount)
    reverts_with("NotBuyer()", lambda: env.pay(voucher, sender=env.other))


def test_a_request_is_paid_once(env: MarketEnv) -> None:
    voucher = env.voucher()
    env.approve(env.buyer, 2 * voucher.amount)
    env.pay(voucher)
    reverts_with("AlreadyPaid()", lambda: env.pay(voucher))
    # Even a fresh voucher for the same request id cannot pay it again.
    again = dataclasses.replace(voucher, amount=1)
    reverts_with("AlreadyPaid()", lambda: env.pay(again))


def test_a_tampered_voucher_does_not_match_its_signature(env: MarketEnv) -> None:
    voucher = env.voucher()
    signature = env.sign(voucher)
    cheaper = dataclasses.replace(voucher, amount=1)
    env.approve(env.buyer, voucher.amount)
    reverts_with(
        "WrongSigner()",
        lambda: env.send(env.buyer, env.market.functions.pay(cheaper.as_tuple(), signature)),
    )


def test_release_pays_the_payee_less_the_fee(env: MarketEnv) -> None:
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    env.pay(voucher)
    env.deliver(voucher)
    payee_before = env.balance(env.payee.address)
    treasury_before = env.balance(env.treasury.address)
    receipt = env.send(
        env.operator, env.market.functions.release(request_id_bytes(voucher.requestId))
    )
    fee = voucher.amount * 250 // 10_000
    assert env.balance(env.payee.address) == payee_before + voucher.amount - fee
    assert env.balance(env.treasury.address) == treasury_before + fee
    assert env.balance(env.market.address) == 0
    (released,) = env.market.events.Released().process_receipt(receipt, errors=DISCARD)
    assert (released["args"]["amount"], released["args"]["fee"]) == (voucher.amount - fee, fee)


def test_release_twice_and_refund_after_release_are_refused(env: MarketEnv) -> None:
    voucher = env.voucher()
    request = request_id_bytes(voucher.requestId)
    env.approve(env.buyer, voucher.amount)
    env.pay(voucher)
    env.deliver(voucher)
    env.send(env.operator, env.market.functions.release(request))
    reverts_with(
        "NotDelivered()", lambda: env.send(env.operator, env.market.functions.release(request))
    )
    reverts_with("NotPaid()", lambda: env.send(env.operator, env.market.functions.refund(request)))


def test_only_the_operator_releases_and_anchors(env: MarketEnv) -> None:
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    env.pay(voucher)
    request = request_id_bytes(voucher.requestId)
    reverts_with(
        "NotOperator()", lambda: env.send(env.buyer, env.market.functions.release(request))
    )
    reverts_with(
        "NotOperator()", lambda: env.send(env.owner, env.market.functions.anchor(b"\1" * 32, 1))
    )


def test_the_operator_refunds_any_time_before_release(env: MarketEnv) -> None:
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    before = env.balance(env.buyer.address)
    env.pay(voucher)
    receipt = env.send(
        env.operator, env.market.functions.refund(request_id_bytes(voucher.requestId))
    )
    assert env.balance(env.buyer.address) == before
    (refunded,) = env.market.events.Refunded().process_receipt(receipt, errors=DISCARD)
    assert refunded["args"]["amount"] == voucher.amount


def test_the_buyer_refunds_alone_only_after_refund_after(env: MarketEnv) -> None:
    voucher = env.voucher(validUntil=env.now() + 500, refundAfter=env.now() + 1000)
    request = request_id_bytes(voucher.requestId)
    env.approve(env.buyer, voucher.amount)
    before = env.balance(env.buyer.address)
    env.pay(voucher)
    reverts_with("TooEarly()", lambda: env.send(env.buyer, env.market.functions.refund(request)))
    reverts_with("NotBuyer()", lambda: env.send(env.other, env.market.functions.refund(request)))
    env.increase_time(1001)
    env.send(env.buyer, env.market.functions.refund(request))
    assert env.balance(env.buyer.address) == before


def test_pause_stops_paying_delivering_and_releasing_but_never_refunds(env: MarketEnv) -> None:
    voucher, paid, delivered = env.voucher(), env.voucher(), env.voucher()
    env.approve(env.buyer, 3 * voucher.amount)
    env.pay(paid)
    env.pay(delivered)
    env.deliver(delivered)
    env.send(env.owner, env.market.functions.pause())
    reverts_with("EnforcedPause()", lambda: env.pay(voucher))
    request = request_id_bytes(paid.requestId)
    reverts_with("EnforcedPause()", lambda: env.deliver(paid))
    reverts_with(
        "EnforcedPause()",
        lambda: env.send(
            env.operator, env.market.functions.release(request_id_bytes(delivered.requestId))
        ),
    )
    env.send(env.operator, env.market.functions.refund(request))
    reverts_with(
        "OwnableUnauthorizedAccount(address)",
        lambda: env.send(env.other, env.market.functions.unpause()),
    )
    env.send(env.owner, env.market.functions.unpause())
    env.pay(voucher)


def test_operator_rotation_by_the_owner(env: MarketEnv) -> None:
    reverts_with(
        "OwnableUnauthorizedAccount(address)",
        lambda: env.send(env.other, env.market.functions.setOperator(env.other.address, False)),
    )
    env.send(env.owner, env.market.functions.setOperator(env.other.address, False))
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    reverts_with("WrongSigner()", lambda: env.pay(voucher))  # the old operator's signature
    env.pay(voucher, signer=env.other)


def test_ownership_moves_in_two_steps(env: MarketEnv) -> None:
    env.send(env.owner, env.market.functions.transferOwnership(env.other.address))
    assert env.market.functions.owner().call() == env.owner.address
    assert env.market.functions.pendingOwner().call() == env.other.address
    env.send(env.other, env.market.functions.acceptOwnership())
    assert env.market.functions.owner().call() == env.other.address


def test_fee_and_treasury_are_the_owners_to_set(env: MarketEnv) -> None:
    reverts_with("FeeTooHigh()", lambda: env.send(env.owner, env.market.functions.setFeeBps(1001)))
    env.send(env.owner, env.market.functions.setFeeBps(0))
    env.send(env.owner, env.market.functions.setTreasury(env.other.address))
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    env.pay(voucher)
    env.deliver(voucher)
    before = env.balance(env.payee.address)
    env.send(env.operator, env.market.functions.release(request_id_bytes(voucher.requestId)))
    assert env.balance(env.payee.address) == before + voucher.amount


def test_anchor_emits_the_root(env: MarketEnv) -> None:
    root = Web3.keccak(text="root")
    receipt = env.send(env.operator, env.market.functions.anchor(root, 2))
    (anchored,) = env.market.events.Anchored().process_receipt(receipt, errors=DISCARD)
    assert anchored["args"]["root"] == root and anchored["args"]["kind"] == 2


def test_amounts_beyond_the_escrow_width_are_refused(env: MarketEnv) -> None:
    voucher = env.voucher(amount=2**96)
    reverts_with("AmountTooLarge()", lambda: env.pay(voucher))


def test_gene_token_mints_for_its_owner_only(env: MarketEnv) -> None:
    reverts_with(
        "OwnableUnauthorizedAccount(address)",
        lambda: env.send(env.other, env.token.functions.mint(env.other.address, 1)),
    )


@pytest.fixture
def odd_token_env(env: MarketEnv):
    def make(name: str) -> MarketEnv:
        return deploy_market(env.w3, env.accounts, mock_artifact(name))

    return make


def test_a_token_that_returns_no_bool_works(odd_token_env) -> None:
    odd = odd_token_env("NoBoolToken")
    voucher = odd.voucher()
    odd.approve(odd.buyer, voucher.amount)
    odd.pay(voucher)
    odd.deliver(voucher)
    odd.send(odd.operator, odd.market.functions.release(request_id_bytes(voucher.requestId)))
    assert odd.balance(odd.market.address) == 0


def test_a_fee_on_transfer_token_is_refused(odd_token_env) -> None:
    odd = odd_token_env("FeeOnTransferToken")
    voucher = odd.voucher()
    odd.approve(odd.buyer, voucher.amount)
    reverts_with("ShortfallReceived(uint256,uint256)", lambda: odd.pay(voucher))


def test_a_reentrant_token_cannot_refund_during_release(odd_token_env) -> None:
    odd = odd_token_env("ReentrantToken")
    voucher = odd.voucher()
    odd.approve(odd.buyer, voucher.amount)
    odd.pay(voucher)
    request = request_id_bytes(voucher.requestId)
    odd.deliver(voucher)
    odd.send(odd.owner, odd.token.functions.arm(odd.market.address, request))
    odd.send(odd.operator, odd.market.functions.release(request))
    assert odd.token.functions.attacked().call() is True
    assert odd.token.functions.attackSucceeded().call() is False
    assert odd.balance(odd.market.address) == 0


def test_the_artifacts_abi_matches_the_vouchers_we_sign() -> None:
    abi = load_artifact("AccessMarket")["abi"]
    pay = next(item for item in abi if item.get("name") == "pay")
    components = [c["name"] for c in pay["inputs"][0]["components"]]  # type: ignore[index]
    assert components == [field["name"] for field in vouchers.VOUCHER_FIELDS]
