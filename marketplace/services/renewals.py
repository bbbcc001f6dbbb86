"""Renewals of live grants (issue 19 §4): the researcher is told before a grant ends and
may ask for a renewal, a short request linked to the grant that the committee reviews,
paid at the current price under a new on-chain request id (so a new escrow), which on
delivery runs on from the end of the grant it renews (`settlement.grant_ends_at`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.errors import Conflict, NotFound
from marketplace.models import AccessRequest, User
from marketplace.models.lifecycle import LIVE, State
from marketplace.services.access_requests import request_submit
from marketplace.services.notifications import notify_user

# A renewal still on its way (not ended) stands in the way of another one.
RENEWAL_ENDED = (
    State.REJECTED,
    State.WITHDRAWN,
    State.LAPSED,
    State.REFUNDED,
    State.EXPIRED,
    State.REVOKED,
)


def _open_renewal(request: AccessRequest) -> AccessRequest | None:
    return request.renewals.exclude(state__in=RENEWAL_ENDED).first()


def request_renew(
    *,
    researcher: User,
    request_id: UUID | str,
    statement: str,
    agreement_sha256: str | None = None,
) -> AccessRequest:
    """Ask to renew a live grant: a new request for the same dataset and purpose, at the
    dataset's current price, reviewed like any request (automatic review approves it at
    once when the purpose still fits). Writes the new request's one `request.submit`
    entry, naming the grant it renews.

    Raises NotFound (not the researcher's request), Conflict (the grant is not live, or a
    renewal is already on its way), and what `request_submit` raises (blocked, agreement
    to accept, dataset withdrawn)."""
    with transaction.atomic():
        original = (
            AccessRequest.objects.select_for_update(of=("self",))
            .filter(pk=request_id, researcher=researcher)
            .first()
        )
        if original is None:
            raise NotFound("No such request.")
        if original.state not in LIVE:
            raise Conflict(
                "Only access that is still granted can be renewed: request the dataset anew."
            )
        pending = _open_renewal(original)
        if pending is not None:
            raise Conflict(
                f"A renewal of this access is already on its way: /requests/{pending.pk}/"
            )
        return request_submit(
            researcher=researcher,
            dataset_id=original.dataset_id,
            purpose_codes=original.purpose_codes,  # the purpose the grant was made for
            statement=statement.strip() or f"Renewal of request {original.pk}.",
            accept_terms=True,
            agreement_sha256=agreement_sha256,
            renews=original,
            tier_id=original.tier_id,  # the same scope as the grant it renews
        )


def requests_remind_expiring(*, now: datetime | None = None) -> int:
    """Periodic: tell each researcher whose grant ends within `RENEWAL_REMINDER_DAYS` (and
    who has no renewal on its way) once, in the app and by email, with the link to renew.
    Returns how many were told."""
    moment = now or timezone.now()
    horizon = moment + timedelta(days=settings.RENEWAL_REMINDER_DAYS)
    renewing = AccessRequest.objects.filter(renews=OuterRef("pk")).exclude(state__in=RENEWAL_ENDED)
    told = 0
    due = (
        AccessRequest.objects.filter(
            state__in=LIVE,
            expires_at__gt=moment,
            expires_at__lte=horizon,
            renewal_reminded_at__isnull=True,
        )
        .exclude(Exists(renewing))
        .select_related("dataset", "researcher")
    )
    for request in due:
        with transaction.atomic():
            updated = AccessRequest.objects.filter(
                pk=request.pk, renewal_reminded_at__isnull=True
            ).update(renewal_reminded_at=moment)
            if not updated:  # another worker told them
                continue
            assert request.expires_at is not None
            notify_user(
                user=request.researcher,
                request=request,
                message=(
                    f"Your access to “{request.dataset.title}” ends on "
                    f"{request.expires_at:%d %b %Y}. To keep it, ask for a renewal on the "
                    "request's page; the committee reviews it and you pay the current price."
                ),
                link=f"/requests/{request.pk}/#renew",
            )
            told += 1
    return told
