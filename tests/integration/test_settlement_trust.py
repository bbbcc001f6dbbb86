"""Settlement that holds when the database lies (issue 12, findings 1, 2 and 4), against a
real anvil and PostgreSQL with the worker's services in-process. Each test fails on the
code before the delivery lock: it writes rows as the web tier could, or makes a
settlement transaction revert, and checks what the chain and the grants say."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from web3 import Web3

from genomics.models import Grant
from ledger import vouchers
from ledger.models import ChainEvent, Deployment, OperatorTransaction
from ledger.pinned import EscrowStatus, MarketMismatch, check_deployment_agrees, escrow_of
from ledger.services.indexer import indexer_run
from ledger.services.sender import operator_transactions_poll
from marketplace.models import AccessRequest, Notification, Role
from marketplace.services.settlement import request_grant, request_release
from tests.integration.test_lifecycle import mine
from tests.ledger.contracts_env import MarketEnv, reverts_with
from tests.support.web import logged_in

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def escrow(request: AccessRequest) -> EscrowStatus:
    return escrow_of(vouchers.request_id_bytes(request.chain_request_id)).status


def raw_send(env: MarketEnv, account, call, tip_gwei: int) -> str:
    """Broadcast without waiting (automine is off in the caller)."""
    tx = call.build_transaction(
        {
            "from": account.address,
            "nonce": env.w3.eth.get_transaction_count(account.address, "pending"),
            "maxPriorityFeePerGas": tip_gwei * 10**9,
            "maxFeePerGas": 1000 * 10**9,
            "gas": 200_000,
        }
    )
    return Web3.to_hex(
        env.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    )


def _paused_in_flight(env: MarketEnv, send: Callable[[], object]) -> None:
    """Run `send` (an operator transaction, left pending), then have the owner pause the
    market in the same block, mined first: the operator's transaction reverts."""
    env.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        send()
        raw_send(env, env.owner, env.market.functions.pause(), tip_gwei=50)
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        env.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]


def _grant_without_release(flow, monkeypatch) -> None:
    """Pay and grant; the release is left for the test to ask."""
    from marketplace.services import settlement

    real = settlement.request_release
    monkeypatch.setattr(settlement, "request_release", lambda **_: None)
    flow.pay()
    monkeypatch.setattr(settlement, "request_release", real)


def test_a_reverted_release_is_retried_and_the_buyer_can_never_reclaim(
    flow, operator_key: MarketEnv, monkeypatch, settings, make_user
) -> None:
    """Finding 1: the owner pauses while the release is in flight, so it reverts. The
    delivery is on chain, so the buyer's reclaim after refundAfter fails; the release is
    asked again under a new attempt key, and the donor is paid."""
    env = operator_key
    _grant_without_release(flow, monkeypatch)
    request = flow.request()
    assert request.state == "granted" and escrow(request) == EscrowStatus.DELIVERED

    _paused_in_flight(env, lambda: request_release(request_id=request.pk))
    operator_transactions_poll()
    first = OperatorTransaction.objects.get(action="release", key=str(request.pk))
    assert first.status == OperatorTransaction.Status.FAILED
    # Staff see it on the chain page (it used to be hidden).
    page = logged_in(make_user(Role.REVIEWER)).get("/chain/")
    assert page.status_code == 200 and first.tx_hash in page.content.decode()

    env.increase_time(int(request.voucher_refund_after or 0) - env.now() + 10)
    rid = vouchers.request_id_bytes(request.chain_request_id)
    reverts_with("NotPaid()", lambda: env.send(env.buyer, env.market.functions.refund(rid)))

    env.send(env.owner, env.market.functions.unpause())
    settings.SETTLEMENT_RETRY_BASE_S = 0
    request_release(request_id=request.pk)
    second = OperatorTransaction.objects.get(action="release", key=f"{request.pk}#2")
    operator_transactions_poll()
    mine(env)
    indexer_run()
    assert flow.request().state == "settled"
    assert OperatorTransaction.objects.get(pk=second.pk).status == OperatorTransaction.Status.MINED


def test_a_release_that_keeps_failing_is_flagged_for_admins(
    flow, operator_key: MarketEnv, monkeypatch, settings, make_user
) -> None:
    admin = make_user(Role.ADMIN)
    env = operator_key
    settings.SETTLEMENT_MAX_ATTEMPTS = 1
    _grant_without_release(flow, monkeypatch)
    request = flow.request()
    _paused_in_flight(env, lambda: request_release(request_id=request.pk))
    operator_transactions_poll()
    request_release(request_id=request.pk)
    assert "release transaction failed" in flow.request().flagged
    assert Notification.objects.filter(user=admin, message__contains="release").exists()


def test_no_grant_while_the_market_is_paused(flow, operator_key: MarketEnv) -> None:
    env = operator_key
    flow.pay(grant=False)
    env.send(env.owner, env.market.functions.pause())
    request = request_grant(request_id=flow.request().pk)
    assert request.state == "paid"
    assert not Grant.objects.exists() and escrow(request) == EscrowStatus.PAID
    env.send(env.owner, env.market.functions.unpause())
    assert request_grant(request_id=request.pk).state == "granted"


def test_no_grant_when_the_reclaim_is_too_close(flow, settings) -> None:
    settings.GRANT_REFUND_MARGIN_S = 365 * 86400
    flow.pay()
    request = flow.request()
    assert request.state in ("refunding", "refunded")
    assert not Grant.objects.exists()
    assert escrow(request) in (EscrowStatus.PAID, EscrowStatus.REFUNDED)


def test_a_request_flipped_to_paid_without_a_payment_is_never_granted(flow) -> None:
    """Finding 2: the web tier writes `state = paid` on a payable request; nothing was
    paid on chain. The old grant trusted the row."""
    request = flow.request()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE marketplace_accessrequest SET state = 'paid' WHERE id = %s", [request.pk]
        )
    after = request_grant(request_id=request.pk)
    assert after.state == "paid" and "No paid escrow" in after.flagged
    assert not Grant.objects.exists()


def test_a_voucher_row_rewritten_by_the_web_tier_is_not_acted_on(flow) -> None:
    """Finding 2: the row's buyer is swapped after the worker signed; the MAC fails."""
    flow.pay(grant=False)
    request = flow.request()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE marketplace_accessrequest SET amount = 1 WHERE id = %s", [request.pk]
        )
    after = request_grant(request_id=request.pk)
    assert after.state == "paid" and "not the one the worker signed" in after.flagged
    assert not Grant.objects.exists()


def test_a_deployment_row_pointing_at_another_contract_moves_nothing(
    flow, operator_key: MarketEnv, settings
) -> None:
    """Finding 2: the deployment row is pointed at a contract that merely emits `Paid`
    (here a second market whose operator the attacker holds). The indexer reads only the
    pinned market and stops loudly; the worker refuses to start."""
    from ledger.artifacts import load_artifact
    from ledger.transactions import deploy

    env = operator_key
    attacker = env.other
    fake, _ = deploy(
        env.w3,
        attacker,
        dict(load_artifact("AccessMarket")),
        env.token.address,
        attacker.address,
        attacker.address,
        0,
        attacker.address,
    )
    fake_market = env.w3.eth.contract(address=Web3.to_checksum_address(fake), abi=env.market.abi)
    request = flow.request()
    voucher = vouchers.Voucher(
        requestId=request.chain_request_id,
        buyer=env.buyer.address,
        payee=env.payee.address,
        amount=1,
        validUntil=env.now() + 100,
        refundAfter=env.now() + 200,
    )
    signature = vouchers.sign(attacker, chain_id=env.w3.eth.chain_id, market=fake, voucher=voucher)
    env.send(env.buyer, env.token.functions.approve(fake, 1))
    env.send(env.buyer, fake_market.functions.pay(voucher.as_tuple(), signature))
    mine(env)
    Deployment.objects.filter(name="market").update(address=fake)
    with pytest.raises(MarketMismatch):
        indexer_run()
    with pytest.raises(MarketMismatch):
        check_deployment_agrees()
    assert not ChainEvent.objects.filter(name="Paid").exists()
    assert flow.request().state == "payable" and not Grant.objects.exists()


def test_a_payment_after_the_donor_withdrew_consent_is_refunded(
    flow, operator_key: MarketEnv, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """Finding 4: the payment lands after the request was rejected (the cancel lost the
    race): it used to sit in escrow for days while the researcher's withdraw answered 409."""
    env = operator_key
    voucher = flow.researcher_api.get(f"/api/v1/access-requests/{flow.request_id}").json()[
        "voucher"
    ]
    call = flow.request_voucher_tuple()
    monkeypatch.setattr("marketplace.tasks.request_cancel_voucher", lambda **_: None)
    with django_capture_on_commit_callbacks(execute=True):
        response = flow.donor_api.post(f"/api/v1/datasets/{flow.dataset_id}/withdraw")
    assert response.status_code in (200, 202), response.content
    assert flow.request().state == "rejected"
    before = env.balance(env.buyer.address)
    env.approve(env.buyer, int(voucher["amount"]))
    env.send(env.buyer, env.market.functions.pay(call, voucher["signature"]))
    mine(env)
    with django_capture_on_commit_callbacks(execute=True):
        indexer_run()  # the Paid event on a rejected request: refunded on chain
    assert flow.request().state == "refunding"
    operator_transactions_poll()
    mine(operator_key)
    indexer_run()
    request = flow.request()
    assert request.state == "refunded"
    assert operator_key.balance(operator_key.buyer.address) == before
    assert not Grant.objects.exists()


def test_a_withdrawn_payable_request_has_its_voucher_cancelled(
    flow, operator_key, django_capture_on_commit_callbacks
) -> None:
    """Finding 4: a closed request's voucher can no longer be paid."""
    voucher = flow.researcher_api.get(f"/api/v1/access-requests/{flow.request_id}").json()[
        "voucher"
    ]
    call = flow.request_voucher_tuple()
    with django_capture_on_commit_callbacks(execute=True):
        response = flow.researcher_api.post(f"/api/v1/access-requests/{flow.request_id}/withdraw")
    assert response.status_code == 200, response.content
    request = flow.request()
    assert request.state == "withdrawn" and escrow(request) == EscrowStatus.CANCELLED
    env = operator_key
    env.approve(env.buyer, int(voucher["amount"]))
    reverts_with(
        "AlreadyPaid()",
        lambda: env.send(
            env.buyer,
            env.market.functions.pay(call, voucher["signature"]),
        ),
    )


def test_a_refund_after_delivery_is_an_incident(flow) -> None:
    """A `Refunded` on a granted request (impossible with our contract; a safety net for
    any other) drops the grants, flags the request and tells admins."""
    from marketplace.services.settlement import request_apply_settlement

    flow.pay()
    request = flow.request()
    assert request.state in ("granted", "settled") and Grant.objects.exists()
    event = ChainEvent(
        chain_id=1,
        tx_hash="0x" + "ab" * 32,
        log_index=0,
        block_number=1,
        block_hash="0x" + "cd" * 32,
        tx_index=0,
        contract="0x" + "00" * 20,
        name="Refunded",
        args={},
        request_id=request.chain_request_id,
    )
    after = request_apply_settlement(event=event)
    assert after is not None and after.state == "refunded"
    assert "after the data was delivered" in after.flagged
    assert not Grant.objects.exists()


def test_the_worker_recomputes_the_consent_fit_before_signing(
    operator_key: MarketEnv, make_user
) -> None:
    """Finding 2: an approval is a web-tier fact, the consent fit is not. A request whose
    purpose does not fit, marked approved by whoever can write the row, gets no voucher."""
    from marketplace.models import Dataset
    from marketplace.services.settlement import request_sign_voucher
    from tests.factories import ready_file

    donor, researcher = make_user(Role.DONOR), make_user(Role.RESEARCHER)
    dataset = Dataset.objects.create(
        donor=donor,
        title="t",
        duo_codes=[{"code": "DUO:0000007", "value": "MONDO:0005148"}],  # disease-specific
        price=10,
        access_days=30,
        state=Dataset.State.LISTED,
        record_hash="0" * 64,
    )
    dataset.files.add(ready_file(donor))
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        statement="s",
        purpose_codes=[{"code": "DUO:0000042", "value": ""}],  # general research: no fit
        duo_match={"fits": True},  # as the web tier could write it
        amount=10,
        state=AccessRequest.State.APPROVED,
    )
    signed = request_sign_voucher(request_id=request.pk)
    assert signed.state == "approved" and not signed.voucher_signature
    assert "does not fit" in signed.flagged


def test_a_reverted_delivery_goes_back_to_paid_and_is_tried_again(
    flow, operator_key: MarketEnv, settings
) -> None:
    """The market is paused while the `deliver` is in flight: no grant header is made, the
    request waits as paid, and a new attempt after the backoff delivers and grants."""
    env = operator_key
    flow.pay(grant=False)
    request = flow.request()
    delivering: list[str] = []
    _paused_in_flight(env, lambda: delivering.append(request_grant(request_id=request.pk).state))
    assert delivering == ["delivering"]
    operator_transactions_poll()
    assert flow.request().state == "paid" and not Grant.objects.exists()
    assert escrow(request) == EscrowStatus.PAID
    env.send(env.owner, env.market.functions.unpause())
    settings.SETTLEMENT_RETRY_BASE_S = 0
    assert request_grant(request_id=request.pk).state in ("granted", "settled")
    assert OperatorTransaction.objects.filter(action="deliver", key=f"{request.pk}#2").exists()
    assert Grant.objects.exists()


def test_a_worker_refuses_a_mismatched_market_even_with_the_node_away(
    operator_key: MarketEnv, settings
) -> None:
    """Without a configured chain id and with the node unreachable, every market row must
    still agree with MARKET_ADDRESS."""
    from ledger import chain

    Deployment.objects.filter(name="market").update(address="0x" + "be" * 20)
    settings.CHAIN_ID = None
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"  # nothing listens
    chain._node_chain_id.cache_clear()
    with pytest.raises(MarketMismatch):
        check_deployment_agrees()
