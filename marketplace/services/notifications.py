"""Telling donors and researchers when a request changes state: an in-app notification
and an email (Django's mail backend; the console in the dev profile)."""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from ledger.selectors.wallets import wallet_address_of
from marketplace.models import AccessRequest, Dataset, Notification, Role, User

logger = logging.getLogger(__name__)

S = AccessRequest.State
# What each party is told of a request's new state, each message saying what to do next
# (issue 16 §10); the researcher and the donor read different words (neither is told of
# "your request" that is the other's).
TO_RESEARCHER = {
    S.SUBMITTED: "Your request for “{title}” is waiting for review by the data access "
    "committee; you will be told here when they decide.",
    S.APPROVED: "Your request for “{title}” was approved. Its voucher is being signed: pay "
    "on the request's page as soon as it is ready.",
    S.REJECTED: "Your request for “{title}” was rejected. You may send a new request whose "
    "purpose or statement answers the reason.",
    S.WITHDRAWN: "Your request for “{title}” was withdrawn (or closed by an admin); nothing "
    "is owed. Send a new request from the dataset's page if you still need the data.",
    S.PAYABLE: "Your request for “{title}” is ready to pay: pay on its page before the "
    "voucher's deadline.",
    S.LAPSED: "The payment window for “{title}” closed unpaid. Send a new request from the "
    "dataset's page if you still need the data.",
    S.PAID: "Your payment for “{title}” arrived; the files are being delivered. Nothing to do "
    "until you are told access is granted.",
    S.GRANTED: "Access to “{title}” is granted: download the files from the request's page "
    "and decrypt them with your Crypt4GH key.",
    S.REFUNDING: "Your payment for “{title}” is being refunded to your wallet; nothing to do "
    "meanwhile.",
    S.REFUNDED: "Your payment for “{title}” was refunded to your wallet. Send a new request "
    "if you still need the data.",
    S.SETTLED: "Your payment for “{title}” was released to the donor. Your access stays open "
    "until it expires.",
    S.EXPIRED: "Your access to “{title}” has expired: delete your copies of the files, as the "
    "terms ask, and send a new request to use the data again.",
    S.REVOKED: "Your access to “{title}” was revoked: downloads stopped. Delete your copies "
    "of the files, as the terms ask.",
    S.RETURNED: "Your request for “{title}” was returned for changes: edit it on its page and "
    "send it again; its history stays with it.",
}
TO_DONOR = {
    S.SUBMITTED: "A new access request for “{title}” is waiting for review by the data "
    "access committee; nothing to do.",
    S.APPROVED: "A request for “{title}” was approved; its payment goes to your linked "
    "payout wallet. Nothing to do.",
    S.REJECTED: "A request for “{title}” was rejected; nothing to do.",
    S.WITHDRAWN: "A request for “{title}” was withdrawn; nothing to do.",
    S.PAYABLE: "A request for “{title}” is ready to be paid by the researcher; nothing to do.",
    S.LAPSED: "A request for “{title}” lapsed unpaid; nothing to do.",
    S.PAID: "A payment for “{title}” arrived in escrow; the files are being delivered. "
    "Nothing to do.",
    S.GRANTED: "Access to “{title}” is granted; the payment is released to your wallet next. "
    "Nothing to do.",
    S.REFUNDING: "A payment for “{title}” is being refunded to the researcher (the files were "
    "not delivered); nothing to do.",
    S.REFUNDED: "A payment for “{title}” was refunded to the researcher; nothing to do.",
    S.SETTLED: "The payment for “{title}” was released to your wallet; see your earnings on "
    "your dashboard.",
    S.EXPIRED: "A researcher's access to “{title}” has expired; nothing to do.",
    S.REVOKED: "A researcher's access to “{title}” was revoked; downloads stopped.",
    S.RETURNED: "A request for “{title}” was returned to the researcher for changes; nothing "
    "to do.",
}
MESSAGE_MAX = 500  # Notification.message


def notify_request_change(*, request: AccessRequest) -> list[Notification]:
    """Notify the researcher and the donor of the request's new state, each in their own
    words (in the app, and by an email of their own)."""
    state = AccessRequest.State(request.state)
    if state not in TO_RESEARCHER:
        return []
    made = []
    for person, messages in (
        (request.researcher, TO_RESEARCHER),
        (request.dataset.donor, TO_DONOR),
    ):
        message = _with_why(messages[state].format(title=request.dataset.title), request)
        made.append(Notification.objects.create(user=person, request=request, message=message))
        if person.email:
            transaction.on_commit(partial(_email, message, [person.email], _request_path(request)))
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


def _with_why(message: str, request: AccessRequest) -> str:
    """The message, then ' Reason: …' for a decision that gave one (shortened to fit the
    notification; the page shows it whole); a revocation also says what happens to the
    money (nothing is refunded: the data has left; DESIGN "What the chain must guarantee")."""
    money = ""
    if request.state == AccessRequest.State.REVOKED:
        money = " Nothing is refunded: the files had already been delivered."
    reason = request.decision_reason if request.state in _REASONED else ""
    if not reason:
        return message + money
    room = MESSAGE_MAX - len(message) - len(money) - len(" Reason: ")
    if len(reason) > room:
        reason = reason[: room - 1] + "…"
    return f"{message} Reason: {reason}{money}"


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


def notify_user(
    *, user: User, message: str, link: str = "", request: AccessRequest | None = None
) -> Notification:
    """One person told of something that is not a request's change of state (e.g. a
    block): in the app, and by email when they have an address. `message` at most 500
    characters; `link` a site path."""
    made = Notification.objects.create(user=user, request=request, message=message[:500])
    if user.email:
        transaction.on_commit(partial(_email, message, [user.email], link))
    return made


DELISTED = (
    "An admin delisted your dataset “{title}”: it no longer shows in the catalogue and takes "
    "no new requests. Reason: {reason} {effects}"
)


def notify_dataset_delisted(
    *, dataset: Dataset, reason: str, closed: int, continuing: int
) -> Notification:
    """Tell the donor that an admin delisted their dataset, why, and what happened to its
    requests (issue 16 §6); the researchers whose requests closed are told by the close
    itself. In the app and by email, linking to the dataset's page."""
    effects = []
    if closed:
        effects.append(f"{closed} waiting request{'s' if closed != 1 else ''} closed unpaid.")
    if continuing:
        effects.append(
            f"{continuing} paid request{'s' if continuing != 1 else ''} still "
            "delivered and settled as agreed."
        )
    short = reason if len(reason) <= 200 else reason[:199] + "…"
    message = DELISTED.format(title=dataset.title, reason=short, effects=" ".join(effects))
    made = Notification.objects.create(user=dataset.donor, message=message.strip()[:500])
    if dataset.donor.email:
        link = f"/datasets/{dataset.pk}/"
        transaction.on_commit(partial(_email, made.message, [dataset.donor.email], link))
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
