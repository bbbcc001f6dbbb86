"""Admins moderate (issue 16 §6): closing a request that waits for what will not come,
through the declared lifecycle (Move.CLOSE), audited; a payable request's voucher is
cancelled by the worker's task, never by a transaction the web builds."""

from __future__ import annotations

from typing import cast

import pytest

from marketplace.models import AccessRequest, AuditEntry, Dataset, Role, User
from marketplace.services.audit import audit_views
from tests.factories import UserFactory, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


def _request(state: str) -> AccessRequest:
    donor = cast(User, UserFactory(role=Role.DONOR))
    dataset = Dataset.objects.create(
        donor=donor, title="Exomes", price=1000, access_days=30, duo_codes=[]
    )
    dataset.files.set([ready_file(donor)])
    return AccessRequest.objects.create(
        dataset=dataset,
        researcher=cast(User, UserFactory(role=Role.RESEARCHER)),
        statement="Research.",
        amount=1000,
        state=state,
        voucher_signature="0x" + "11" * 65 if state == "payable" else "",
    )


@pytest.mark.parametrize("state", ["submitted", "approved", "payable"])
def test_an_admin_closes_a_waiting_request_with_a_reason(
    state: str, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    queued: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(
        "marketplace.services.access_requests.enqueue",
        lambda task, *args: queued.append((task.name, args)),
    )
    request = _request(state)
    admin = logged_in(cast(User, UserFactory(role=Role.ADMIN)))
    page = admin.get(f"/requests/{request.pk}/").content.decode()
    assert "Close the request (admin)" in page
    with django_capture_on_commit_callbacks(execute=True):
        closed = admin.post(
            f"/requests/{request.pk}/close", {"reason": "The donor never linked a wallet."}
        )
    assert closed.status_code == 302
    request.refresh_from_db()
    assert request.state == "withdrawn"
    assert request.decision_reason == "The donor never linked a wallet."
    entry = AuditEntry.objects.get(action="request.close", object_id=str(request.pk))
    # The admin's reason is a personal field: outside the hashed entry, joined back to read.
    assert audit_views([entry])[0].fields["reason"] == "The donor never linked a wallet."
    expected = [("marketplace.tasks.cancel_voucher", (str(request.pk),))]
    assert queued == (expected if state == "payable" else [])


def test_only_an_admin_closes_and_only_a_waiting_request() -> None:
    request = _request("submitted")
    reviewer = logged_in(cast(User, UserFactory(role=Role.REVIEWER)))
    assert "Close the request" not in reviewer.get(f"/requests/{request.pk}/").content.decode()
    assert reviewer.post(f"/requests/{request.pk}/close", {"reason": "x"}).status_code == 403
    granted = _request("granted")
    admin = logged_in(cast(User, UserFactory(role=Role.ADMIN)))
    assert "Close the request" not in admin.get(f"/requests/{granted.pk}/").content.decode()
    refused = admin.post(f"/requests/{granted.pk}/close", {"reason": "x"})
    assert refused.status_code == 409 and "can be closed" in refused.content.decode()


# --- Delisting a dataset (issue 16 §6) ------------------------------------------------------


def _on_dataset(dataset: Dataset, state: str) -> AccessRequest:
    return AccessRequest.objects.create(
        dataset=dataset,
        researcher=cast(User, UserFactory(role=Role.RESEARCHER)),
        statement="Research.",
        amount=1000,
        state=state,
        voucher_signature="0x" + "11" * 65 if state != "submitted" else "",
    )


def test_an_admin_delists_a_dataset_from_its_page(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    queued: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(
        "marketplace.services.access_requests.enqueue",
        lambda task, *args: queued.append((task.name, args)),
    )
    waiting = _request("submitted")
    dataset = waiting.dataset
    payable = _on_dataset(dataset, "payable")
    paid = _on_dataset(dataset, "paid")
    granted = _on_dataset(dataset, "granted")
    admin = logged_in(cast(User, UserFactory(role=Role.ADMIN)))
    page = admin.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "Delist the dataset (admin)" in page

    refused = admin.post(f"/datasets/{dataset.pk}/delist", {"reason": " "})
    assert refused.status_code == 400 and "This field is required" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = admin.post(f"/datasets/{dataset.pk}/delist", {"reason": "Duplicate of another."})
    assert done.status_code == 302
    dataset.refresh_from_db()
    assert dataset.state == "delisted" and dataset.delist_reason == "Duplicate of another."

    # Waiting requests closed through Move.CLOSE (audited as such); the payable one's
    # voucher is cancelled by the worker's task, never by a transaction the web builds.
    states = {r.pk: r.state for r in AccessRequest.objects.filter(dataset=dataset)}
    assert states == {
        waiting.pk: "withdrawn",
        payable.pk: "withdrawn",
        paid.pk: "paid",
        granted.pk: "granted",
    }
    closes = AuditEntry.objects.filter(action="request.close")
    assert {e.object_id for e in closes} == {str(waiting.pk), str(payable.pk)}
    assert queued == [("marketplace.tasks.cancel_voucher", (str(payable.pk),))]
    entry = AuditEntry.objects.get(action="dataset.delist", object_id=str(dataset.pk))
    # The reason is a person's words: kept beside the hashed entry (README "Donors' rights").
    assert audit_views([entry])[0].fields == {
        "reason": "Duplicate of another.",
        "requests_closed": 2,
        "requests_continuing": 2,
    }
    # The donor is told with the reason, and so is each researcher whose request closed.
    donor_mail = [m for m in mailoutbox if m.to == [dataset.donor.email]]
    assert any("Duplicate of another." in m.body for m in donor_mail)
    for closed in (waiting, payable):
        told = [m for m in mailoutbox if m.to == [closed.researcher.email]]
        assert told and "delisted" in told[0].body
    assert not [m for m in mailoutbox if m.to == [paid.researcher.email]]

    # Gone from the catalogue and the API listing; its page says so to its donor and admins.
    visitor = logged_in(cast(User, UserFactory(role=Role.RESEARCHER)))
    assert "Exomes" not in visitor.get("/datasets/").content.decode()
    assert visitor.get(f"/datasets/{dataset.pk}/").status_code == 404
    listing = visitor.get("/api/v1/datasets").json()
    assert str(dataset.pk) not in {d["id"] for d in listing["results"]}
    assert "Delisted by an admin" in admin.get(f"/datasets/{dataset.pk}/").content.decode()


def test_a_paid_request_on_a_delisted_dataset_is_still_delivered() -> None:
    """Delisting is moderation, not a withdrawal of consent: the grant check lets a paid
    request go on (a withdrawal refunds it instead)."""
    from marketplace.services.settlement import _grant_problem

    paid = _request("paid")
    Dataset.objects.filter(pk=paid.dataset_id).update(state="delisted")
    paid.refresh_from_db()
    paid.researcher.crypt4gh_public_key = b"\x01" * 32
    assert _grant_problem(paid) is None
    Dataset.objects.filter(pk=paid.dataset_id).update(state="withdrawn")
    paid.refresh_from_db()
    assert _grant_problem(paid) == "the donor withdrew consent before the grant"


def test_only_an_admin_delists() -> None:
    dataset = _request("submitted").dataset
    reviewer = logged_in(cast(User, UserFactory(role=Role.REVIEWER)))
    assert "Delist" not in reviewer.get(f"/datasets/{dataset.pk}/").content.decode()
    assert reviewer.post(f"/datasets/{dataset.pk}/delist", {"reason": "x"}).status_code == 403
    donor = logged_in(dataset.donor)
    assert donor.post(f"/datasets/{dataset.pk}/delist", {"reason": "x"}).status_code == 403
    dataset.refresh_from_db()
    assert dataset.state == "listed"


def test_the_django_admin_shows_the_marketplace_records_read_only() -> None:
    request = _request("payable")
    AccessRequest.objects.filter(pk=request.pk).update(voucher_mac="ab" * 32)
    admin = logged_in(cast(User, UserFactory(role=Role.ADMIN)))
    index = admin.get("/admin/").content.decode()
    for model in ("dataset", "accessrequest", "auditentry"):
        assert f"/admin/marketplace/{model}/" in index, model
    page = admin.get(f"/admin/marketplace/accessrequest/{request.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Research." in text and "ab" * 32 not in text
    assert 'name="_save"' not in text  # read-only: nothing to save
    assert admin.post(f"/admin/marketplace/dataset/{request.dataset_id}/delete/").status_code == 403
    assert admin.get("/admin/marketplace/dataset/add/").status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/admin/authtoken/tokenproxy/add/", "/admin/otp_totp/totpdevice/add/", "/admin/auth/group/"],
)
def test_the_django_admin_is_no_side_door_to_credentials(path: str) -> None:
    """No admin mints another account's API token or second factor (newcomer finding: a
    token could be added for any user, unaudited); tokens and factors are their owners'."""
    admin = logged_in(cast(User, UserFactory(role=Role.ADMIN)))
    assert admin.get(path).status_code == 404
    assert "authtoken" not in admin.get("/admin/").content.decode()


def test_a_delisted_datasets_donor_still_sees_its_blocklist_and_may_withdraw() -> None:
    dataset = _request("submitted").dataset
    Dataset.objects.filter(pk=dataset.pk).update(state="delisted")
    page = logged_in(dataset.donor).get(f"/datasets/{dataset.pk}/").content.decode()
    assert f"/datasets/{dataset.pk}/withdraw/" in page
    assert f"/datasets/{dataset.pk}/blocks/" in page
    assert f"/datasets/{dataset.pk}/edit/" not in page  # delisted: no more edits
    admin = logged_in(cast(User, UserFactory(role=Role.ADMIN)))
    assert (
        f"/datasets/{dataset.pk}/blocks/" in admin.get(f"/datasets/{dataset.pk}/").content.decode()
    )
