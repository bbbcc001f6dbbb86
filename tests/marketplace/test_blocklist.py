"""The per-dataset blocklist (issue 19 §4): a revocation for misuse blocks the researcher
from the dataset; their other requests for it end by the settlement rules, each with one
audit entry; new requests are refused with the reason until the block is lifted."""

from __future__ import annotations

from typing import cast

import pytest
from rest_framework.test import APIClient

from marketplace.models import AccessRequest, AuditEntry, Dataset, DatasetBlock, Role, User
from marketplace.services.datasets import dataset_create
from tests.factories import UserFactory, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db
State = AccessRequest.State


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _dataset(donor: User, title: str = "Exomes") -> Dataset:
    return dataset_create(
        donor=donor,
        title=title,
        description="",
        files=[ready_file(donor).pk],
        duo_codes=["DUO:0000042"],
        price="1000",
        access_days=30,
        review="committee",
    )


def _request(
    dataset: Dataset, researcher: User, state: str, renews: AccessRequest | None = None
) -> AccessRequest:
    return AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        statement="Research.",
        purpose_codes=[{"code": "DUO:0000042", "value": ""}],
        amount=dataset.price,
        state=state,
        duo_match={"fits": True, "reasons": []},
        renews=renews,
    )


def _ask(researcher: User, dataset: Dataset):
    return _api(researcher).post(
        "/api/v1/access-requests",
        {
            "dataset": str(dataset.pk),
            "purpose_codes": ["DUO:0000042"],
            "statement": "Again.",
            "accept_terms": True,
        },
        format="json",
    )


def _entries(request: AccessRequest) -> list[str]:
    return list(
        AuditEntry.objects.filter(object_type="access_request", object_id=str(request.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_revoking_for_misuse_blocks_and_ends_the_researchers_other_requests() -> None:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    bystander = cast(User, UserFactory(role=Role.RESEARCHER))
    dataset, elsewhere = _dataset(donor), _dataset(donor, "Other cohort")
    misused = _request(dataset, researcher, State.GRANTED)
    # One open request per researcher and dataset; its renewals are the others that can
    # be open at once (the service makes one at a time; the rows cover each state).
    waiting = _request(dataset, researcher, State.SUBMITTED, renews=misused)
    payable = _request(dataset, researcher, State.PAYABLE, renews=misused)
    paid = _request(dataset, researcher, State.PAID, renews=misused)
    also_live = _request(dataset, researcher, State.SETTLED, renews=misused)
    others = _request(dataset, bystander, State.GRANTED)
    other_dataset = _request(elsewhere, researcher, State.GRANTED)

    response = _api(donor).post(
        f"/api/v1/access-requests/{misused.pk}/revoke",
        {"reason": "Shared the files with a third party.", "block": True},
        format="json",
    )
    assert response.status_code == 200, response.json()
    states = {r.pk: r.state for r in AccessRequest.objects.all()}
    assert states[misused.pk] == State.REVOKED
    assert states[waiting.pk] == State.REJECTED and states[payable.pk] == State.REJECTED
    assert states[paid.pk] == State.REFUNDING  # paid, not delivered: the escrow goes back
    assert states[also_live.pk] == State.REVOKED
    assert states[others.pk] == State.GRANTED and states[other_dataset.pk] == State.GRANTED
    # One audit entry per request ended, one for the block.
    for ended, action in (
        (waiting, "request.reject"),
        (payable, "request.reject"),
        (paid, "request.refunding"),
        (also_live, "request.revoke"),
    ):
        assert _entries(ended)[-1:] == [action], ended.state
        assert _entries(ended).count(action) == 1
    blocks = AuditEntry.objects.filter(action="dataset.block", object_id=str(dataset.pk))
    assert blocks.count() == 1 and blocks.get().data["request"] == str(misused.pk)
    rejected = AccessRequest.objects.get(pk=waiting.pk)
    assert "blocked from this dataset" in rejected.decision_reason

    refused = _ask(researcher, dataset)
    assert refused.status_code == 403
    assert "Shared the files with a third party." in refused.json()["error"]["message"]
    assert AccessRequest.objects.get(pk=other_dataset.pk).state == State.GRANTED
    assert _ask(researcher, _dataset(donor, "Third cohort")).status_code == 201  # that one only
    newcomer = cast(User, UserFactory(role=Role.RESEARCHER))
    assert _ask(newcomer, dataset).status_code == 201


def test_a_plain_revocation_blocks_nobody() -> None:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    dataset = _dataset(donor)
    granted = _request(dataset, researcher, State.GRANTED)
    waiting = _request(dataset, researcher, State.SUBMITTED, renews=granted)
    _api(donor).post(
        f"/api/v1/access-requests/{granted.pk}/revoke", {"reason": "Ended."}, format="json"
    )
    assert not DatasetBlock.objects.exists()
    assert AccessRequest.objects.get(pk=waiting.pk).state == State.SUBMITTED
    assert _ask(cast(User, UserFactory(role=Role.RESEARCHER)), dataset).status_code == 201


def test_lifting_a_block_lets_the_researcher_request_again() -> None:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    dataset = _dataset(donor)
    granted = _request(dataset, researcher, State.GRANTED)
    client = logged_in(donor)
    revoked = client.post(
        f"/requests/{granted.pk}/revoke", {"reason": "Published identifiable data.", "block": "on"}
    )
    assert revoked.status_code == 302
    block = DatasetBlock.objects.get(dataset=dataset, researcher=researcher)
    listing = client.get(f"/datasets/{dataset.pk}/blocks/").content.decode()
    assert researcher.username in listing and "Published identifiable data." in listing
    assert _ask(researcher, dataset).status_code == 403

    lifted = client.post(f"/datasets/{dataset.pk}/blocks/{block.pk}/lift")
    assert lifted.status_code == 302
    block.refresh_from_db()
    assert block.lifted_at is not None and block.lifted_by == donor
    assert (
        AuditEntry.objects.filter(action="dataset.unblock", object_id=str(dataset.pk)).count() == 1
    )
    asked = _ask(researcher, dataset)
    assert asked.status_code == 201
    # A second revocation for misuse blocks again: a lifted block does not stand in the way.
    AccessRequest.objects.filter(pk=asked.json()["id"]).update(state=State.GRANTED)
    again = AccessRequest.objects.get(pk=asked.json()["id"])
    client.post(f"/requests/{again.pk}/revoke", {"reason": "Again.", "block": "on"})
    assert DatasetBlock.objects.filter(researcher=researcher, lifted_at__isnull=True).count() == 1
