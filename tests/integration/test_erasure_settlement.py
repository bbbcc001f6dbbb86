"""A donor's erasure against the chain (issue 19 §5): a request paid but not delivered is
refunded on chain, a delivered one is not (the data has left) and its visas stop being
served; anchored audit roots still verify after the donor's personal fields are gone."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from genomics import payloads
from genomics.models import GenomicFile, Grant, PayloadPart
from ledger.models import OperatorTransaction
from ledger.services.indexer import indexer_run
from ledger.services.sender import operator_transactions_poll
from marketplace.models import Anchor, AuditEntry, AuditPersonal, Dataset, Erasure, Visa
from tests.integration.test_anchoring import anchor_and_confirm
from tests.integration.test_lifecycle import mine
from tests.ledger.contracts_env import MarketEnv

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
CIPHERTEXT = bytes(range(256)) * 40


def _store_payload(dataset_id: str) -> GenomicFile:
    stored = Dataset.objects.get(pk=dataset_id).files.get()
    name = payloads.write_part(stored.payload_key, 0, CIPHERTEXT)
    PayloadPart.objects.create(
        file=stored, payload_offset=0, size=len(CIPHERTEXT), storage_name=name
    )
    GenomicFile.objects.filter(pk=stored.pk).update(payload_size=len(CIPHERTEXT))
    return stored


def _erase(flow, django_capture_on_commit_callbacks) -> Erasure:
    """The donor erases everything; the worker's task runs (eagerly) after the commit."""
    with django_capture_on_commit_callbacks(execute=True):
        answer = flow.donor_api.post(
            "/api/v1/me/erase", {"files": "all", "confirm": True}, format="json"
        )
    assert answer.status_code == 202, answer.content
    return Erasure.objects.get(pk=answer.json()["id"])


def test_erasure_refunds_a_paid_undelivered_request_and_anchors_still_verify(
    flow, operator_key: MarketEnv, django_capture_on_commit_callbacks
) -> None:
    env = operator_key
    stored = _store_payload(flow.dataset_id)
    before = env.balance(env.buyer.address)
    flow.pay(grant=False)  # paid; not delivered yet
    assert flow.request().state == "paid"
    anchor_and_confirm(env)  # the donor's own entries (listing) are anchored on chain
    assert AuditPersonal.objects.filter(subject_id=str(flow.donor.pk)).exists()

    erasure = _erase(flow, django_capture_on_commit_callbacks)

    assert Erasure.objects.get(pk=erasure.pk).state == "done"
    assert AuditEntry.objects.filter(action="donor.erase").count() == 1
    assert flow.request().state == "refunding"
    operator_transactions_poll()
    mine(env)
    indexer_run()
    assert flow.request().state == "refunded"
    assert env.balance(env.buyer.address) == before
    assert not GenomicFile.objects.filter(pk=stored.pk).exists()
    assert not default_storage.exists(payloads.part_name(stored.payload_key, 0))
    assert not AuditPersonal.objects.filter(subject_id=str(flow.donor.pk)).exists()
    anchor_and_confirm(env)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)  # raises CommandError when broken
    assert "anchored roots match the chain" in out.getvalue()
    # ... among them the root over the donor's own entries, whose side rows are gone.
    donors = AuditEntry.objects.filter(actor_id=str(flow.donor.pk)).values_list("seq", flat=True)
    assert Anchor.objects.filter(
        kind=Anchor.Kind.AUDIT, first_seq__lte=min(donors), last_seq__gte=min(donors)
    ).exclude(tx_hash="")


def test_erasure_does_not_refund_a_delivered_request_and_its_visas_stop(
    flow, operator_key: MarketEnv, django_capture_on_commit_callbacks, visa_key
) -> None:
    _store_payload(flow.dataset_id)
    flow.pay()
    request = flow.request()
    assert request.state == "granted" and Grant.objects.count() == 1
    assert Visa.objects.exclude(token="").exists()
    assert flow.researcher_api.get("/api/v1/me/passport").json()["ga4gh_passport_v1"]
    file_id = request.dataset.files.get().pk
    download = flow.researcher_api.get(f"/api/v1/access-requests/{request.pk}/files/{file_id}")
    assert download.status_code == 200
    b"".join(download.streaming_content)

    erasure = _erase(flow, django_capture_on_commit_callbacks)

    assert Erasure.objects.get(pk=erasure.pk).state == "done"
    assert flow.request().state == "revoked"
    assert not OperatorTransaction.objects.filter(action="refund").exists()
    assert not Visa.objects.exists()
    assert flow.researcher_api.get("/api/v1/me/passport").json()["ga4gh_passport_v1"] == []
    again = flow.researcher_api.get(f"/api/v1/access-requests/{request.pk}/files/{file_id}")
    assert again.status_code == 404
    # The donor still sees who accessed the data, and when.
    history = flow.donor_api.get("/api/v1/me/disclosures").json()["disclosures"]
    assert {d["action"] for d in history} == {"request.grant", "request.download"}
    assert [d["filename"] for d in history if d["action"] == "request.download"] == ["(erased)"]
