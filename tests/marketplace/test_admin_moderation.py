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
