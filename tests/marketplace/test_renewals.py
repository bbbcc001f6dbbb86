"""Renewals before the chain (issue 19 §4): who may renew what, and the reminder before
a grant ends (once per grant, not when a renewal is on its way)."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.models import AccessRequest, Notification, Role, User
from marketplace.services.blocklist import researcher_block
from marketplace.services.renewals import requests_remind_expiring
from tests.factories import UserFactory, committee_request
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def live() -> AccessRequest:
    return committee_request(state="granted", expires_at=timezone.now() + timedelta(days=10))


def _renew(user: User, request: AccessRequest):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(f"/api/v1/access-requests/{request.pk}/renew", {}, format="json")


def test_only_the_researcher_renews_live_access(live: AccessRequest) -> None:
    stranger = cast(User, UserFactory(role=Role.RESEARCHER))
    assert _renew(stranger, live).status_code == 404
    made = _renew(live.researcher, live)
    assert made.status_code == 201
    body = made.json()
    assert body["renews"] == str(live.pk) and body["state"] == "submitted"
    assert body["purpose_codes"] == live.purpose_codes
    ended = AccessRequest.objects.filter(pk=live.pk)
    ended.update(state="expired")
    AccessRequest.objects.filter(pk=body["id"]).update(state="rejected")
    assert _renew(live.researcher, live).status_code == 409


def test_a_blocked_researcher_cannot_renew(live: AccessRequest) -> None:
    researcher_block(
        actor=live.dataset.donor,
        dataset_id=live.dataset_id,
        researcher_id=live.researcher_id,
        reason="Misuse.",
    )
    # The block revoked the live grant: nothing is left to renew.
    assert _renew(live.researcher, live).status_code == 409


def test_the_request_page_offers_a_renewal_and_links_both_ways(live: AccessRequest) -> None:
    client = logged_in(live.researcher)
    page = client.get(f"/requests/{live.pk}/").content.decode()
    assert 'id="renew"' in page and "Ask for a renewal" in page
    sent = client.post(f"/requests/{live.pk}/renew", {"statement": "Six more months."})
    assert sent.status_code == 302
    renewal = AccessRequest.objects.get(renews=live)
    assert renewal.statement == "Six more months."
    assert f"/requests/{live.pk}/" in client.get(sent["Location"]).content.decode()
    again = client.get(f"/requests/{live.pk}/").content.decode()
    assert "Ask for a renewal" not in again and f"/requests/{renewal.pk}/" in again


def test_the_researcher_is_told_once_before_the_grant_ends(live: AccessRequest, settings) -> None:
    settings.RENEWAL_REMINDER_DAYS = 14
    far = AccessRequest.objects.create(
        dataset=live.dataset,
        researcher=cast(User, UserFactory(role=Role.RESEARCHER)),
        statement="Later.",
        purpose_codes=live.purpose_codes,
        amount=live.amount,
        state="settled",
        expires_at=timezone.now() + timedelta(days=60),
    )
    assert requests_remind_expiring() == 1
    assert requests_remind_expiring() == 0
    told = Notification.objects.get(user=live.researcher, request=live)
    assert "ask for a renewal" in told.message
    assert not Notification.objects.filter(request=far).exists()
    # A grant with a renewal on its way is not reminded.
    colleague = cast(User, UserFactory(role=Role.RESEARCHER))
    other = AccessRequest.objects.create(
        dataset=live.dataset,
        researcher=colleague,
        statement="x",
        purpose_codes=live.purpose_codes,
        amount=live.amount,
        state="granted",
        expires_at=timezone.now() + timedelta(days=3),
    )
    AccessRequest.objects.create(
        dataset=live.dataset,
        researcher=colleague,
        statement="renewal",
        purpose_codes=live.purpose_codes,
        amount=live.amount,
        renews=other,
    )
    assert requests_remind_expiring() == 0
