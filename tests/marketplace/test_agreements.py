"""Data access agreements (issue 19 §3): versioned texts, accepted by their exact SHA-256
when requesting; the acceptance is in the audit entry and in the voucher's terms hash."""

from __future__ import annotations

import hashlib
from typing import cast

import pytest
from rest_framework.test import APIClient

from marketplace.models import (
    AccessRequest,
    AuditEntry,
    DataAccessAgreement,
    Dataset,
    Role,
    User,
)
from marketplace.services.agreements import agreement_publish
from marketplace.services.settlement import request_terms
from tests.factories import UserFactory, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db
TEXT_V1 = "Use the data only for the stated purpose.\nNo re-identification."
TEXT_V2 = TEXT_V1 + "\nPublish with the consortium's acknowledgement."


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def dataset_id() -> str:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    response = _api(donor).post(
        "/api/v1/datasets",
        {
            "title": "Cohort",
            "files": [str(ready_file(donor).pk)],
            "duo_codes": ["DUO:0000042"],
            "price": "1000",
            "access_days": 30,
            "review": "committee",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])


def _donor(dataset_id: str) -> User:
    return Dataset.objects.select_related("donor").get(pk=dataset_id).donor


def _publish(dataset_id: str, text: str) -> dict:
    response = _api(_donor(dataset_id)).put(
        f"/api/v1/datasets/{dataset_id}/agreement",
        {"title": "Consortium DAA", "text": text},
        format="json",
    )
    assert response.status_code == 200, response.json()
    return response.json()


def _ask(researcher: User, dataset_id: str, **extra: object):
    return _api(researcher).post(
        "/api/v1/access-requests",
        {
            "dataset": dataset_id,
            "purpose_codes": ["DUO:0000042"],
            "statement": "Cardiac variants.",
            "accept_terms": True,
            **extra,
        },
        format="json",
    )


def test_versions_hash_the_exact_text_and_only_a_change_makes_a_new_one(dataset_id) -> None:
    first = _publish(dataset_id, TEXT_V1)
    assert first["version"] == 1
    assert first["sha256"] == hashlib.sha256(TEXT_V1.encode()).hexdigest()
    # A browser's \r\n is the same text: no new version.
    assert _publish(dataset_id, TEXT_V1.replace("\n", "\r\n"))["version"] == 1
    second = _publish(dataset_id, TEXT_V2)
    assert second["version"] == 2
    assert APIClient().get(f"/api/v1/datasets/{dataset_id}/agreement").json() == second
    assert list(
        DataAccessAgreement.objects.filter(dataset_id=dataset_id).values_list("version", "current")
    ) == [(2, True), (1, False)]
    actions = AuditEntry.objects.filter(object_id=dataset_id).values_list("action", "data")
    published = [data for action, data in actions if action == "dataset.agreement_publish"]
    assert [d["version"] for d in published] == [1, 2]


def test_a_request_must_accept_the_current_version(dataset_id) -> None:
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    v1 = _publish(dataset_id, TEXT_V1)
    missing = _ask(researcher, dataset_id)
    assert missing.status_code == 400
    assert "agreement_sha256" in missing.json()["error"]["fields"]
    _publish(dataset_id, TEXT_V2)
    stale = _ask(researcher, dataset_id, agreement_sha256=v1["sha256"])
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "agreement_changed"
    assert "version 2" in stale.json()["error"]["message"]
    assert not AccessRequest.objects.exists()


def test_the_acceptance_is_in_the_audit_entry_and_the_voucher_terms(dataset_id) -> None:
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    plain = _ask(researcher, dataset_id)  # no agreement yet
    assert plain.status_code == 201 and plain.json()["agreement"] is None
    v1 = _publish(dataset_id, TEXT_V1)
    second = cast(User, UserFactory(role=Role.RESEARCHER))  # one open request each
    accepted = _ask(second, dataset_id, agreement_sha256=v1["sha256"].upper())
    assert accepted.status_code == 201, accepted.json()
    body = accepted.json()
    assert body["agreement"] == {"version": 1, "sha256": v1["sha256"]}
    entry = AuditEntry.objects.get(action="request.submit", object_id=body["id"])
    assert entry.data["agreement"] == {"version": 1, "sha256": v1["sha256"]}

    with_v1 = AccessRequest.objects.get(pk=body["id"])
    without = AccessRequest.objects.get(pk=plain.json()["id"])
    terms_v1 = request_terms(with_v1)
    # The same request with another version accepted signs different terms.
    with_v1.agreement = agreement_publish(
        dataset_id=dataset_id, actor=_donor(dataset_id), title="Consortium DAA", text=TEXT_V2
    )
    assert request_terms(with_v1) != terms_v1
    without.pk = with_v1.pk  # the same request, no agreement
    assert request_terms(without) not in (terms_v1, request_terms(with_v1))


def test_the_request_form_shows_the_text_and_needs_the_acceptance(dataset_id) -> None:
    v1 = _publish(dataset_id, TEXT_V1)
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    client = logged_in(researcher)
    url = f"/datasets/{dataset_id}/request/"
    page = client.get(url).content.decode()
    assert "No re-identification." in page and v1["sha256"] in page
    form = {
        "permission": "DUO:0000042",
        "statement": "Cardiac variants.",
        "accept_terms": "on",
        "agreement_sha256": v1["sha256"],
    }
    refused = client.post(url, form)
    assert refused.status_code == 400 and not AccessRequest.objects.exists()
    # Published while the researcher read version 1: refused, version 2 shown, unticked.
    _publish(dataset_id, TEXT_V2)
    stale = client.post(url, {**form, "accept_agreement": "on"})
    html = stale.content.decode()
    assert stale.status_code == 400 and "version 2 is current" in html
    assert "consortium&#x27;s acknowledgement" in html or "consortium's acknowledgement" in html
    assert not AccessRequest.objects.exists()
    current = DataAccessAgreement.objects.get(dataset_id=dataset_id, current=True)
    sent = client.post(url, {**form, "agreement_sha256": current.sha256, "accept_agreement": "on"})
    assert sent.status_code == 302
    made = AccessRequest.objects.get()
    assert made.agreement == current
    assert current.sha256 in client.get(f"/requests/{made.pk}/").content.decode()


def test_only_the_donor_publishes_and_removing_drops_the_requirement(dataset_id) -> None:
    other = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    refused = _api(other).put(
        f"/api/v1/datasets/{dataset_id}/agreement", {"title": "x", "text": "y"}, format="json"
    )
    assert refused.status_code == 403
    _publish(dataset_id, TEXT_V1)
    page = logged_in(_donor(dataset_id)).post(f"/datasets/{dataset_id}/agreement/", {"remove": "1"})
    assert page.status_code == 302
    assert APIClient().get(f"/api/v1/datasets/{dataset_id}/agreement").status_code == 404
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    assert _ask(researcher, dataset_id).status_code == 201


def test_an_agreement_published_while_the_form_was_open_is_explained(dataset_id) -> None:
    """The form was loaded when no agreement was asked for (newcomer finding: only
    "required" under a box never seen): the page says what changed and what to do."""
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    client = logged_in(researcher)
    _publish(dataset_id, TEXT_V1)
    sent = client.post(
        f"/datasets/{dataset_id}/request/",
        {"permission": "DUO:0000042", "statement": "Cardiac variants.", "accept_terms": "on"},
    )
    html = sent.content.decode()
    assert sent.status_code == 400 and "now asks you to accept a data access agreement" in html
    assert "No re-identification." in html and not AccessRequest.objects.exists()
