"""Telling donors and researchers when a request changes state: an in-app notification
and an email (Django's mail backend; the console in the dev profile)."""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from ledger.selectors.wallets import wallet_address_of
from marketplace.models import AccessRequest, Notification, Role, User

logger = logging.getLogger(__name__)

MESSAGES = {
    AccessRequest.State.SUBMITTED: "A new access request for “{title}” is waiting for review.",
    AccessRequest.State.APPROVED: "Your request for “{title}” was approved.",
    AccessRequest.State.REJECTED: "The request for “{title}” was rejected.",
    AccessRequest.State.WITHDRAWN: "The request for “{title}” was withdrawn.",
    AccessRequest.State.PAYABLE: "Your request for “{title}” is ready to pay.",
    AccessRequest.State.LAPSED: "The payment window for “{title}” closed unpaid.",
    AccessRequest.State.PAID: "Payment for “{title}” arrived.",
    AccessRequest.State.GRANTED: "Access to “{title}” is granted: the files can be downloaded.",
    AccessRequest.State.REFUNDING: "The payment for “{title}” is being refunded.",
    AccessRequest.State.REFUNDED: "The payment for “{title}” was refunded.",
    AccessRequest.State.SETTLED: "The payment for “{title}” was released to the donor.",
    AccessRequest.State.EXPIRED: "Access to “{title}” has expired.",
    AccessRequest.State.REVOKED: "Access to “{title}” was revoked.",
    AccessRequest.State.RETURNED: (
        "Your request for “{title}” was returned for changes: edit it and send it again."
    ),
}


def notify_request_change(*, request: AccessRequest) -> list[Notification]:
    """Notify the researcher and the donor of the request's new state."""
    template = MESSAGES.get(AccessRequest.State(request.state))
    if template is None:
        return []
    message = template.format(title=request.dataset.title) + _why(request)
    people: list[User] = [request.researcher, request.dataset.donor]
    made = [
        Notification.objects.create(user=person, request=request, message=message)
        for person in people
    ]
    recipients = [person.email for person in people if person.email]
    if recipients:
        link = _request_path(request)
        transaction.on_commit(lambda: _email(message, recipients, link))
    return made


def _request_path(request: AccessRequest) -> str:
    return f"/requests/{request.pk}/"


REVIEW_WANTED = "A new access request for “{title}” waits for your review."


def notify_reviewers_of_request(*, request: AccessRequest) -> list[Notification]:
    """A request that waits for the committee: each member of the committee that owns the
    dataset (issue 19 §1) is told, in the app and by an email of their own, with the link
    to decide it (issue 16 §4)."""
    message = REVIEW_WANTED.format(title=request.dataset.title)
    return notify_committee(request=request, message=message)


def notify_committee(
    *, request: AccessRequest, message: str, exclude: User | None = None
) -> list[Notification]:
    """Tell every active member of the request's committee (but `exclude`, and never the
    request's own researcher), in the app and by email."""
    reviewers = list(
        User.objects.filter(is_active=True, dac_memberships__dac_id=request.dataset.dac_id)
        .exclude(pk=request.researcher_id)
        .distinct()
    )
    if exclude is not None:
        reviewers = [person for person in reviewers if person.pk != exclude.pk]
    made = [
        Notification.objects.create(user=reviewer, request=request, message=message)
        for reviewer in reviewers
    ]
    recipients = [reviewer.email for reviewer in reviewers if reviewer.email]
    if recipients:
        transaction.on_commit(partial(_email, message, recipients, _request_path(request)))
    return made


# States whose notification carries the decision's reason (issue 16 §8).
_REASONED = (
    AccessRequest.State.RETURNED,
    AccessRequest.State.APPROVED,
    AccessRequest.State.REJECTED,
    AccessRequest.State.WITHDRAWN,
    AccessRequest.State.REVOKED,
)


def _why(request: AccessRequest) -> str:
    """' Reason: …' for a decision that gave one; a revocation also says what happens to
    the money (nothing is refunded: the data has left)."""
    text = ""
    if request.state in _REASONED and request.decision_reason:
        # Notification.message holds 500 characters; the page shows the whole reason.
        reason = request.decision_reason
        text += f" Reason: {reason if len(reason) <= 300 else reason[:299] + '…'}"
    if request.state == AccessRequest.State.REVOKED:
        text += " Nothing is refunded: the files had already been delivered."
    return text


def notify_admins_of_flag(*, request: AccessRequest, reason: str) -> list[Notification]:
    """A payment that does not match its voucher, or one a reorg took back after the
    grant: admins decide, so each of them is told in the app and by email."""
    message = f"Request {request.pk} for “{request.dataset.title}” needs an admin: {reason}"
    admins = list(User.objects.filter(is_active=True, role=Role.ADMIN)) + list(
        User.objects.filter(is_active=True, is_superuser=True).exclude(role=Role.ADMIN)
    )
    made = [
        Notification.objects.create(user=admin, request=request, message=message)
        for admin in admins
    ]
    recipients = [admin.email for admin in admins if admin.email]
    if recipients:
        transaction.on_commit(partial(_email, message, recipients, _request_path(request)))
    return made


WALLET_WANTED = (
    "A request for “{title}” was approved and waits for your wallet: its payment cannot be "
    "prepared until you link one. Link a wallet on your profile (/profile/#wallet); the "
    "request then goes ahead by itself."
)


def notify_wallet_wanted(*, request: AccessRequest) -> list[Notification]:
    """Tell each party whose missing wallet holds up an approved request's voucher (the
    donor, whose payout address it needs, and the researcher, who pays from theirs), in the
    app and by email, once per request and person however often the voucher is retried
    (issue 16 §1). Returns the notifications made now."""
    if request.state != AccessRequest.State.APPROVED or not request.voucher_error:
        return []

    message = WALLET_WANTED.format(title=request.dataset.title)
    made: list[Notification] = []
    for person in (request.dataset.donor, request.researcher):
        if wallet_address_of(user=person) is not None:
            continue
        if Notification.objects.filter(user=person, request=request, message=message).exists():
            continue
        made.append(Notification.objects.create(user=person, request=request, message=message))
        if person.email:
            transaction.on_commit(partial(_email, message, [person.email], "/profile/#wallet"))
    return made


def _email(message: str, recipients: list[str], link: str = "") -> None:
    """One message per recipient: nobody sees another person's address (issue 16 §4).
    `link` is a site path ("/requests/<id>/"), written out in full in the body."""
    body = f"{message}\n\nOpen it: {settings.SITE_URL}{link}" if link else message
    try:
        for recipient in recipients:
            send_mail(
                "GeneMarket: " + message[:80],
                body,
                settings.DEFAULT_FROM_EMAIL,
                [recipient],
                fail_silently=False,
            )
    except OSError:  # the in-app notification stands; the mail server can be retried later
        logger.warning("could not email a notification to %d people", len(recipients))


def notifications_mark_read(*, user: User) -> int:
    from django.utils import timezone

    return Notification.objects.filter(user=user, read_at=None).update(read_at=timezone.now())


def notify_people(
    *, people: list[User], request: AccessRequest, message: str
) -> list[Notification]:
    """Tell each of `people` (active ones) of `message` about `request`, in the app and by
    an email of their own."""
    people = [person for person in people if person.is_active]
    made = [
        Notification.objects.create(user=person, request=request, message=message[:500])
        for person in people
    ]
    recipients = [person.email for person in people if person.email]
    if recipients:
        transaction.on_commit(partial(_email, message, recipients, _request_path(request)))
    return made
