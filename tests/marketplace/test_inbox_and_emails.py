"""Notifications as their recipients meet them (issue 16 §4): one email per recipient with
a link, reviewers told of a request that waits for them, and an in-app inbox page."""

from __future__ import annotations

from typing import cast

import pytest
from django.test import override_settings

from marketplace.models import AccessRequest, Notification, Role, User
from marketplace.services.access_requests import request_submit
from marketplace.services.datasets import dataset_create
from tests.factories import UserFactory, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


def _listing(review: str) -> tuple[str, User]:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    dataset = dataset_create(
        donor=donor,
        title="Exomes",
        description="",
        files=[ready_file(donor).pk],
        duo_codes=["DUO:0000042"],
        price="1000",
        access_days=30,
        review=review,
    )
    return str(dataset.pk), donor


def _submit(dataset_id: str, researcher: User) -> AccessRequest:
    return request_submit(
        researcher=researcher,
        dataset_id=dataset_id,
        purpose_codes=["DUO:0000042"],
        statement="Research.",
        accept_terms=True,
    )


@override_settings(SITE_URL="https://market.example")
def test_reviewers_are_told_of_a_new_request_each_by_their_own_email(
    mailoutbox, django_capture_on_commit_callbacks
) -> None:
    dataset_id, donor = _listing("committee")
    reviewers = [cast(User, UserFactory(role=Role.REVIEWER)) for _ in range(2)]
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    with django_capture_on_commit_callbacks(execute=True):
        request = _submit(dataset_id, researcher)
    for reviewer in reviewers:
        told = Notification.objects.get(user=reviewer, request=request)
        assert "waits for your review" in told.message
    assert all(len(mail.to) == 1 and not mail.cc and not mail.bcc for mail in mailoutbox)
    to = sorted(mail.to[0] for mail in mailoutbox)
    assert to == sorted([donor.email, researcher.email, *(r.email for r in reviewers)])
    link = f"https://market.example/requests/{request.pk}/"
    assert all(link in mail.body for mail in mailoutbox)


def test_reviewers_are_not_told_of_a_request_decided_at_once() -> None:
    dataset_id, _ = _listing("auto")
    reviewer = cast(User, UserFactory(role=Role.REVIEWER))
    request = _submit(dataset_id, cast(User, UserFactory(role=Role.RESEARCHER)))
    assert request.state == "approved"
    assert not Notification.objects.filter(user=reviewer).exists()


def test_the_inbox_lists_notifications_with_links_and_marks_them_read() -> None:
    dataset_id, _ = _listing("committee")
    reviewer = cast(User, UserFactory(role=Role.REVIEWER))
    request = _submit(dataset_id, cast(User, UserFactory(role=Role.RESEARCHER)))
    client = logged_in(reviewer)
    page = client.get("/inbox/").content.decode()
    assert "waits for your review" in page
    assert f'href="/requests/{request.pk}/"' in page
    assert 'aria-label="1 unread"' in page  # the header's count
    read = client.post("/inbox/read", follow=True).content.decode()
    assert "1 notification marked read" in read and 'aria-label="1 unread"' not in read
    assert Notification.objects.get(user=reviewer).read_at is not None
