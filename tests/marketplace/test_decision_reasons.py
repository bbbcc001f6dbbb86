"""Reasons reach the researcher (issue 16 §8): approval, rejection and revocation reasons
are on the request page and in the notifications; a revocation says nothing is refunded."""

from __future__ import annotations

from typing import cast

import pytest

from marketplace.models import AccessRequest, Notification, Role, User
from marketplace.services.access_requests import request_approve, request_reject
from tests.factories import UserFactory, committee_request
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


def _request(state: str = "submitted") -> tuple[AccessRequest, User, User, User]:
    request = committee_request(state=state)
    reviewer = cast(User, UserFactory(role=Role.REVIEWER))
    return request, request.dataset.donor, request.researcher, reviewer


def _page(user: User, request: AccessRequest) -> str:
    return logged_in(user).get(f"/requests/{request.pk}/").content.decode()


def _told(user: User, request: AccessRequest) -> str:
    return Notification.objects.filter(user=user, request=request).first().message  # type: ignore[union-attr]


def test_the_approval_reason_is_shown_to_the_researcher() -> None:
    request, _, researcher, reviewer = _request()
    request_approve(reviewer=reviewer, request_id=request.pk, reason="Ethics approval seen.")
    assert "Reason: Ethics approval seen." in _page(researcher, request)
    assert "Reason: Ethics approval seen." in _told(researcher, request)


def test_the_rejection_reason_is_in_the_message() -> None:
    request, _, researcher, reviewer = _request()
    request_reject(reviewer=reviewer, request_id=request.pk, reason="No ethics approval.")
    assert "Reason: No ethics approval." in _told(researcher, request)
    assert "Reason: No ethics approval." in _page(researcher, request)


@pytest.mark.parametrize("state", ["granted", "settled"])
def test_a_revocation_gives_its_reason_and_says_nothing_is_refunded(state: str) -> None:
    request, donor, researcher, _ = _request(state)
    donor_view = _page(donor, request)
    assert "Nothing is refunded" in donor_view  # said before the donor revokes
    revoked = logged_in(donor).post(
        f"/requests/{request.pk}/revoke", {"reason": "Consent scope changed."}, follow=True
    )
    assert "Nothing is refunded" in revoked.content.decode()
    page = _page(researcher, request)
    assert "Consent scope changed." in page and "Nothing is refunded" in page
    told = _told(researcher, request)
    assert "Reason: Consent scope changed." in told and "Nothing is refunded" in told


def test_a_long_reason_fits_the_notification() -> None:
    request, _, researcher, reviewer = _request()
    request_reject(reviewer=reviewer, request_id=request.pk, reason="x" * 2000)
    assert len(_told(researcher, request)) <= 500
