"""The lifecycle paths after approval: lapse, expiry, revocation and consent withdrawal
(refunded on chain), against anvil with the worker's services in-process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from genomics import c4gh
from genomics.models import Grant
from ledger.models import WalletLink
from ledger.services.indexer import indexer_run
from ledger.services.sender import operator_transactions_poll
from marketplace.models import AccessRequest, Role
from marketplace.services.settlement import requests_lapse_and_expire
from tests.factories import ready_file
from tests.ledger.contracts_env import MarketEnv

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def mine(env: MarketEnv, blocks: int = 3) -> None:
    for _ in range(blocks):
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.fixture
def flow(
    operator_key: MarketEnv, archive_key, worker, make_user, django_capture_on_commit_callbacks
):
    """A request made payable on an auto dataset; `pay()` pays it and indexes the event."""
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    env = operator_key
    donor, researcher = make_user(Role.DONOR), make_user(Role.RESEARCHER)
    WalletLink.objects.create(user=donor, address=env.payee.address)
    WalletLink.objects.create(user=researcher, address=env.buyer.address)
    researcher.crypt4gh_public_key = c4gh.generate_keypair()[1]
    researcher.save()
    stored = ready_file(donor)
    stored.header = c4gh.build_header(c4gh.new_data_key(), bytes(archive_key.public_key))
    stored.archive_key = archive_key
    stored.save()
    dataset = (
        api(donor)
        .post(
            "/api/v1/datasets",
            {
                "title": "x",
                "files": [str(stored.pk)],
                "duo_codes": ["DUO:0000042"],
                "price": "1000",
                "access_days": 30,
                "review": "auto",
            },
            format="json",
        )
        .json()
    )
    with django_capture_on_commit_callbacks(execute=True):
        created = (
            api(researcher)
            .post(
                "/api/v1/access-requests",
                {
                    "dataset": dataset["id"],
                    "purpose_codes": ["DUO:0000042"],
                    "statement": "s",
                    "accept_terms": True,
                },
                format="json",
            )
            .json()
        )

    donor_ = donor

    class Flow:
        request_id = created["id"]
        dataset_id = dataset["id"]
        donor = donor_
        donor_api = api(donor)
        researcher_api = api(researcher)

        @staticmethod
        def request() -> AccessRequest:
            return AccessRequest.objects.get(pk=created["id"])

        @staticmethod
        def pay(*, grant: bool = True) -> None:
            """Pay from the buyer's wallet and index the event; with grant=False the
            enqueued grant is dropped, as if the worker had not reached it yet."""
            voucher = Flow.researcher_api.get(f"/api/v1/access-requests/{created['id']}").json()[
                "voucher"
            ]
            env.approve(env.buyer, int(voucher["amount"]))
            env.send(
                env.buyer,
                env.market.functions.pay(Flow.request_voucher_tuple(), voucher["signature"]),
            )
            mine(env)
            with django_capture_on_commit_callbacks(execute=grant):
                indexer_run()

        @staticmethod
        def request_voucher_tuple():
            from marketplace.services.settlement import voucher_for

            return voucher_for(Flow.request()).as_tuple()

    yield Flow
    celery_app.conf.task_always_eager = False


def test_an_unpaid_voucher_lapses(flow) -> None:
    assert flow.request().state == "payable"
    requests_lapse_and_expire(now=flow.request().voucher_valid_until + 1)
    assert flow.request().state == "lapsed"


def test_access_expires_and_downloads_stop(flow) -> None:
    flow.pay()
    request = flow.request()
    assert request.state == "granted"
    file_id = request.dataset.files.get().pk
    url = f"/api/v1/access-requests/{request.pk}/files/{file_id}"
    assert flow.researcher_api.head(url).status_code == 200
    AccessRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert requests_lapse_and_expire() == (0, 1)
    assert flow.request().state == "expired"
    assert flow.researcher_api.get(url).status_code == 403


def test_the_donor_revokes_and_the_grant_header_is_deleted(flow) -> None:
    flow.pay()
    request = flow.request()
    assert Grant.objects.count() == 1
    response = flow.donor_api.post(
        f"/api/v1/access-requests/{request.pk}/revoke",
        {"reason": "Consent scope changed."},
        format="json",
    )
    assert response.status_code == 200 and response.json()["state"] == "revoked"
    assert Grant.objects.count() == 0
    file_id = request.dataset.files.get().pk
    url = f"/api/v1/access-requests/{request.pk}/files/{file_id}"
    assert flow.researcher_api.get(url).status_code == 403
    assert (
        flow.researcher_api.post(
            f"/api/v1/access-requests/{request.pk}/revoke", {}, format="json"
        ).status_code
        == 403
    )


def test_consent_withdrawal_refunds_a_paid_request_on_chain(
    flow, operator_key: MarketEnv, django_capture_on_commit_callbacks
) -> None:
    env = operator_key
    before = env.balance(env.buyer.address)
    flow.pay(grant=False)  # paid; the worker has not made the grant yet
    assert flow.request().state == "paid"
    paid_balance = env.balance(env.buyer.address)
    assert paid_balance == before - 1000
    with django_capture_on_commit_callbacks(execute=True):
        flow.donor_api.post(f"/api/v1/datasets/{flow.dataset_id}/withdraw")
    assert flow.request().state == "refunding"
    operator_transactions_poll()
    mine(env)
    indexer_run()
    assert flow.request().state == "refunded"
    assert env.balance(env.buyer.address) == before


def test_consent_withdrawal_closes_unpaid_requests(
    flow, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        flow.donor_api.post(f"/api/v1/datasets/{flow.dataset_id}/withdraw")
    request = flow.request()
    assert request.state == "rejected" and "withdrew consent" in request.decision_reason


def test_withdrawing_after_paying_before_the_grant_refunds(
    flow, operator_key: MarketEnv, django_capture_on_commit_callbacks
) -> None:
    env = operator_key
    before = env.balance(env.buyer.address)
    flow.pay(grant=False)  # paid; the worker has not made the grant yet
    assert flow.request().state == "paid"
    with django_capture_on_commit_callbacks(execute=True):
        response = flow.researcher_api.post(f"/api/v1/access-requests/{flow.request_id}/withdraw")
    assert response.json()["state"] == "refunding"
    operator_transactions_poll()
    mine(env)
    indexer_run()
    assert flow.request().state == "refunded"
    assert env.balance(env.buyer.address) == before


def test_earnings_come_from_the_chain_and_are_the_donors_alone(
    flow, operator_key: MarketEnv, make_user
) -> None:
    env = operator_key
    flow.pay()
    operator_transactions_poll()  # the release is mined
    mine(env)
    indexer_run()
    assert flow.request().state == "settled"
    url = f"/api/v1/datasets/{flow.dataset_id}/earnings"
    earnings = flow.donor_api.get(url).json()
    fee = 1000 * 250 // 10_000
    assert earnings == {
        "paid": "1000",
        "released": str(1000 - fee),
        "fee": str(fee),
        "refunded": "0",
        "in_escrow": "0",
    }
    assert flow.researcher_api.get(url).status_code == 404
    assert api(make_user(Role.DONOR)).get(url).status_code == 404
    assert api(make_user(Role.REVIEWER)).get(url).status_code == 200


def test_a_reorg_that_takes_the_payment_back_before_the_grant_makes_it_payable_again(
    flow, operator_key: MarketEnv
) -> None:
    env = operator_key
    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    flow.pay(grant=False)
    assert flow.request().state == "paid"
    env.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    mine(env, 8)  # a longer chain without the payment
    indexer_run()
    request = flow.request()
    assert request.state == "payable" and request.paid_tx == ""
    assert "reverted" in [e.action.removeprefix("request.") for e in _audit_of(request.pk)]


def test_a_reorg_deeper_than_the_confirmations_withdraws_the_grant_and_tells_admins(
    flow, operator_key: MarketEnv, make_user
) -> None:
    from marketplace.models import Notification

    env = operator_key
    admin = make_user(Role.ADMIN)
    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    flow.pay()
    assert flow.request().state == "granted" and Grant.objects.count() == 1
    env.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    mine(env, 12)
    indexer_run()
    request = flow.request()
    assert request.state == "payable" and "canonical chain" in request.flagged
    assert Grant.objects.count() == 0
    file_id = request.dataset.files.get().pk
    download = flow.researcher_api.get(f"/api/v1/access-requests/{request.pk}/files/{file_id}")
    assert download.status_code == 403
    assert Notification.objects.filter(user=admin, message__contains="canonical chain").exists()


def _audit_of(request_id):
    from marketplace.models import AuditEntry

    return AuditEntry.objects.filter(object_id=str(request_id)).order_by("seq")


def test_a_worker_lost_between_grant_and_release_is_caught_up_once(
    flow, operator_key: MarketEnv, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """The grant commits, then the worker dies before asking for the release; the
    reconciler asks, once, however often it runs; the escrow settles."""
    from ledger.models import OperatorTransaction
    from marketplace.services import settlement
    from marketplace.services.reconcile import work_reconcile

    env = operator_key
    real_send = settlement.operator_transaction_send

    class WorkerKilled(BaseException):
        pass

    def die(**kwargs):
        if kwargs["action"] != "release":
            return real_send(**kwargs)
        raise WorkerKilled

    monkeypatch.setattr(settlement, "operator_transaction_send", die)
    with pytest.raises(WorkerKilled):
        flow.pay()  # the grant task runs eagerly and dies after its commit
    assert flow.request().state == "granted"
    assert not OperatorTransaction.objects.filter(action="release").exists()
    monkeypatch.setattr(settlement, "operator_transaction_send", real_send)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            work_reconcile(waiting_for_s=0)
    assert OperatorTransaction.objects.filter(action="release").count() == 1
    operator_transactions_poll()
    mine(env)
    indexer_run()
    assert flow.request().state == "settled"


def test_a_grant_whose_release_meets_a_dead_node_retries_until_it_is_sent(
    flow, operator_key: MarketEnv, monkeypatch
) -> None:
    """The grant commits but the node does not answer the release: the task tries again
    (ChainTask) and the retry, finding the request granted, sends the release once."""
    import requests

    from ledger.models import OperatorTransaction
    from marketplace.services import settlement

    real_send = settlement.operator_transaction_send
    failures: list[str] = []

    def node_down_twice(**kwargs):
        if kwargs["action"] == "release" and len(failures) < 2:
            failures.append(kwargs["action"])
            raise requests.exceptions.ConnectionError("connection refused")
        return real_send(**kwargs)

    monkeypatch.setattr(settlement, "operator_transaction_send", node_down_twice)
    flow.pay()
    assert failures == ["release", "release"]
    assert flow.request().state == "granted"
    assert OperatorTransaction.objects.filter(action="release").count() == 1
