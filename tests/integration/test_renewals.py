"""A renewal on the chain (issue 19 §4): its own request id, voucher and escrow, paid at
the current price; once delivered, access runs on from the end of the grant it renews."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger.services.indexer import indexer_run
from marketplace.models import AccessRequest, AuditEntry, Dataset
from marketplace.services.settlement import requests_lapse_and_expire, voucher_for
from tests.integration.test_lifecycle import mine

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_a_paid_renewal_extends_the_grant_from_its_end(
    flow, operator_key, django_capture_on_commit_callbacks
) -> None:
    env = operator_key
    flow.pay()
    original = flow.request()
    assert original.state == "granted" and original.expires_at is not None
    Dataset.objects.filter(pk=flow.dataset_id).update(price=1500)  # today's price applies

    with django_capture_on_commit_callbacks(execute=True):
        made = flow.researcher_api.post(
            f"/api/v1/access-requests/{original.pk}/renew", {}, format="json"
        )
    assert made.status_code == 201, made.json()
    renewal = AccessRequest.objects.get(pk=made.json()["id"])
    assert renewal.renews_id == original.pk and renewal.state == "payable"
    assert renewal.amount == 1500 and renewal.chain_request_id != original.chain_request_id
    submit = AuditEntry.objects.get(action="request.submit", object_id=str(renewal.pk))
    assert submit.data["renews"] == str(original.pk)
    again = flow.researcher_api.post(
        f"/api/v1/access-requests/{original.pk}/renew", {}, format="json"
    )
    assert again.status_code == 409  # one renewal on its way at a time

    voucher = flow.researcher_api.get(f"/api/v1/access-requests/{renewal.pk}").json()["voucher"]
    env.approve(env.buyer, int(voucher["amount"]))
    env.send(
        env.buyer, env.market.functions.pay(voucher_for(renewal).as_tuple(), voucher["signature"])
    )
    mine(env)
    with django_capture_on_commit_callbacks(execute=True):
        indexer_run()
    renewal.refresh_from_db()
    assert renewal.state in ("granted", "settled")
    assert renewal.expires_at == original.expires_at + timedelta(days=30)
    grant = AuditEntry.objects.get(action="request.grant", object_id=str(renewal.pk))
    assert grant.data["renews"] == str(original.pk)

    # The renewed grant ends; downloads go on through the renewal.
    AccessRequest.objects.filter(pk=original.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    requests_lapse_and_expire()
    assert flow.request().state == "expired"
    file_id = renewal.dataset.files.get().pk
    url = f"/api/v1/access-requests/{renewal.pk}/files/{file_id}"
    assert flow.researcher_api.head(url).status_code == 200
