"""AccessMarket's settlement rules after the security review (issue 12, findings 1, 4, 7):
delivery ends the buyer's refund, the fee is fixed at payment, cancelled vouchers cannot be
paid, refundAfter is bounded, ownership cannot be renounced, rotation keeps outstanding
vouchers payable only when the owner says so, and `Paid` carries the terms."""

from __future__ import annotations

import dataclasses

import pytest
from web3 import Web3
from web3.logs import DISCARD

from ledger.vouchers import request_id_bytes
from tests.ledger.contracts_env import MarketEnv, reverts_with

pytestmark = pytest.mark.integration

DELIVERED, RELEASED, CANCELLED = 2, 3, 5


def status(env: MarketEnv, request_id: str) -> int:
    return int(env.market.functions.escrows(request_id_bytes(request_id)).call()[2])


def test_after_delivery_the_buyer_cannot_reclaim_even_after_refund_after(env: MarketEnv) -> None:
    """Finding 1: a release that reverts (here: the market paused while it is in flight)
    used to leave the escrow reclaimable by the buyer who had the data."""
    voucher = env.voucher(refundAfter=env.now() + 3601 + 10)
    request = request_id_bytes(voucher.requestId)
    env.approve(env.buyer, voucher.amount)
    env.pay(voucher)
    receipt = env.deliver(voucher)
    (delivered,) = env.market.events.Delivered().process_receipt(receipt, errors=DISCARD)
    assert delivered["args"]["requestId"] == request
    env.send(env.owner, env.market.functions.pause())
    reverts_with(
        "EnforcedPause()", lambda: env.send(env.operator, env.market.functions.release(request))
    )
    env.increase_time(7200)
    reverts_with("NotPaid()", lambda: env.send(env.buyer, env.market.functions.refund(request)))
    reverts_with("NotPaid()", lambda: env.send(env.operator, env.market.functions.refund(request)))
    env.send(env.owner, env.market.functions.unpause())
    payee_before = env.balance(env.payee.address)
    env.send(env.operator, env.market.functions.release(request))
    assert env.balance(env.payee.address) > payee_before
    assert status(env, voucher.requestId) == RELEASED


def test_release_needs_a_delivery_first(env: MarketEnv) -> None:
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    env.pay(voucher)
    request = request_id_bytes(voucher.requestId)
    reverts_with(
        "NotDelivered()", lambda: env.send(env.operator, env.market.functions.release(request))
    )
    reverts_with(
        "NotOperator()", lambda: env.send(env.buyer, env.market.functions.deliver(request))
    )


def test_the_fee_is_the_one_in_force_at_payment(env: MarketEnv) -> None:
    """Finding 7: an owner raising the fee could take more from already-paid escrows."""
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    env.pay(voucher)
    env.deliver(voucher)
    env.send(env.owner, env.market.functions.setFeeBps(1000))
    treasury_before = env.balance(env.treasury.address)
    env.send(env.operator, env.market.functions.release(request_id_bytes(voucher.requestId)))
    assert env.balance(env.treasury.address) - treasury_before == voucher.amount * 250 // 10_000


def test_a_cancelled_voucher_cannot_be_paid(env: MarketEnv) -> None:
    """Finding 4: a closed request's voucher stayed payable until it expired."""
    voucher = env.voucher()
    request = request_id_bytes(voucher.requestId)
    receipt = env.send(env.operator, env.market.functions.cancel(request))
    assert env.market.events.Cancelled().process_receipt(receipt, errors=DISCARD)
    env.approve(env.buyer, voucher.amount)
    reverts_with("AlreadyPaid()", lambda: env.pay(voucher))
    assert status(env, voucher.requestId) == CANCELLED
    reverts_with("NotOpen()", lambda: env.send(env.operator, env.market.functions.cancel(request)))
    reverts_with("NotOperator()", lambda: env.send(env.buyer, env.market.functions.cancel(request)))


def test_a_paid_voucher_cannot_be_cancelled(env: MarketEnv) -> None:
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    env.pay(voucher)
    reverts_with(
        "NotOpen()",
        lambda: env.send(
            env.operator, env.market.functions.cancel(request_id_bytes(voucher.requestId))
        ),
    )


@pytest.mark.parametrize(
    "refund_after_offset", [0, -1, 30 * 86400 + 1], ids=["at-expiry", "before-expiry", "too-late"]
)
def test_refund_after_is_bounded(env: MarketEnv, refund_after_offset: int) -> None:
    valid_until = env.now() + 3600
    voucher = env.voucher(validUntil=valid_until, refundAfter=valid_until + refund_after_offset)
    env.approve(env.buyer, voucher.amount)
    reverts_with("BadRefundAfter()", lambda: env.pay(voucher))


def test_ownership_cannot_be_renounced(env: MarketEnv) -> None:
    reverts_with(
        "RenounceDisabled()", lambda: env.send(env.owner, env.market.functions.renounceOwnership())
    )
    assert env.market.functions.owner().call() == env.owner.address


def test_a_planned_rotation_keeps_outstanding_vouchers_payable(env: MarketEnv) -> None:
    outstanding = env.voucher()
    signature = env.sign(outstanding)  # by the operator about to be rotated out
    env.send(env.owner, env.market.functions.setOperator(env.other.address, True))
    env.approve(env.buyer, outstanding.amount)
    env.send(env.buyer, env.market.functions.pay(outstanding.as_tuple(), signature))
    assert status(env, outstanding.requestId) == 1
    # Only the new operator delivers and releases.
    reverts_with("NotOperator()", lambda: env.deliver(outstanding))
    env.send(env.other, env.market.functions.deliver(request_id_bytes(outstanding.requestId)))


def test_honoured_vouchers_of_a_rotated_operator_end_after_the_lifetime(env: MarketEnv) -> None:
    env.send(env.owner, env.market.functions.setOperator(env.other.address, True))
    env.increase_time(30 * 86400 + 1)
    late = env.voucher()
    env.approve(env.buyer, late.amount)
    reverts_with("WrongSigner()", lambda: env.pay(late))  # signed by the old operator
    env.pay(late, signer=env.other)


def test_an_emergency_rotation_stops_the_old_operators_vouchers(env: MarketEnv) -> None:
    voucher = env.voucher()
    signature = env.sign(voucher)
    env.send(env.owner, env.market.functions.setOperator(env.other.address, False))
    env.approve(env.buyer, voucher.amount)
    reverts_with(
        "WrongSigner()",
        lambda: env.send(env.buyer, env.market.functions.pay(voucher.as_tuple(), signature)),
    )


def test_paid_carries_the_terms_and_the_signature_covers_them(env: MarketEnv) -> None:
    terms = Web3.to_hex(Web3.keccak(text="whole dataset, agreement v2"))
    voucher = env.voucher(terms=terms)
    env.approve(env.buyer, 2 * voucher.amount)
    # The same signature over other terms is refused.
    signature = env.sign(voucher)
    other = dataclasses.replace(voucher, terms=Web3.to_hex(Web3.keccak(text="one region")))
    reverts_with(
        "WrongSigner()",
        lambda: env.send(env.buyer, env.market.functions.pay(other.as_tuple(), signature)),
    )
    receipt = env.send(env.buyer, env.market.functions.pay(voucher.as_tuple(), signature))
    (paid,) = env.market.events.Paid().process_receipt(receipt, errors=DISCARD)
    assert Web3.to_hex(paid["args"]["terms"]) == terms
