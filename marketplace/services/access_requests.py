"""The access-request lifecycle, one service function per transition.

Each transition locks the request's row, checks who may make it and from which states,
changes the state and writes one audit entry, all in one transaction; asking for a
transition the request already made returns it unchanged (idempotent).

This module holds the researcher's and the committee's transitions (submit, approve,
reject, withdraw); `settlement` holds those the worker and the chain drive.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from uuid import UUID

from django.db import transaction

from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.queue import enqueue
from marketplace.consent import parse_codes, purpose_fits
from marketplace.consent.codes import ConsentCode
from marketplace.models import AccessRequest, AuditEntry, Dataset, DatasetTier, Role, User
from marketplace.models.lifecycle import Move
from marketplace.models.requests import cannot_now
from marketplace.services.audit import audit_append
from marketplace.services.notifications import (
    notify_request_change,
    notify_reviewers_of_request,
)

State = AccessRequest.State
REVIEWERS = (Role.REVIEWER, Role.ADMIN)


def _consent(dataset: Dataset) -> list[ConsentCode]:
    return [ConsentCode(c["code"], c["value"]) for c in dataset.duo_codes]


def _record(
    request: AccessRequest,
    *,
    action: str,
    actor: User | None,
    data: dict[str, object] | None = None,
) -> None:
    audit_append(
        action=f"request.{action}",
        actor=actor,
        object_type="access_request",
        object_id=request.pk,
        data={"state": request.state, **(data or {})},
    )
    notify_request_change(request=request)


def request_submit(
    *,
    researcher: User,
    dataset_id: UUID | str,
    purpose_codes: Sequence[object],
    statement: str,
    accept_terms: bool,
    tier_id: UUID | str | None = None,
) -> AccessRequest:
    """Ask for access to the whole dataset, or to one of its region tiers (`tier_id`, at
    the tier's price; README "Selling regions"). An `auto` dataset approves a fitting
    purpose at once, and refuses one that cannot fit; otherwise the committee decides."""
    if researcher.role != Role.RESEARCHER:
        raise PermissionDenied("Only researchers request access.")
    if not accept_terms:
        raise ValidationError(
            "Accept the data access terms to send the request.",
            fields={"accept_terms": ["Must be true."]},
        )
    if not statement.strip():
        raise ValidationError("Describe your research.", fields={"statement": ["Required."]})
    dataset = Dataset.objects.filter(pk=dataset_id, state=Dataset.State.LISTED).first()
    if dataset is None:
        raise NotFound("No such dataset.")
    tier = _tier_for_sale(dataset, tier_id)
    purpose = parse_codes(purpose_codes, field="purpose_codes")
    match = purpose_fits(_consent(dataset), purpose, access_days=dataset.access_days)
    with transaction.atomic():
        request = AccessRequest.objects.create(
            dataset=dataset,
            tier=tier,
            researcher=researcher,
            statement=statement.strip(),
            purpose_codes=[{"code": c.code, "value": c.value} for c in purpose],
            duo_match=match.as_json(),
            consent_matcher_version=match.version,
            amount=tier.price if tier is not None else dataset.price,
        )
        _record(
            request,
            action="submit",
            actor=researcher,
            data={
                "duo_match": match.as_json(),
                "scope": tier.scope() if tier is not None else "whole",
                "amount": str(request.amount),
            },
        )
        if dataset.review == Dataset.Review.AUTO:
            if not match.allowed:
                request.advance(Move.REJECT)
                request.decision_reason = " ".join(match.reasons)
                request.save(update_fields=["state", "decision_reason", "updated_at"])
                _record(
                    request,
                    action="reject",
                    actor=None,
                    data={"automatic": True, "consent_matcher_version": match.version},
                )
            elif match.auto_approvable:
                request.advance(Move.APPROVE)
                request.save(update_fields=["state", "updated_at"])
                _record(
                    request,
                    action="approve",
                    actor=None,
                    data={"automatic": True, "consent_matcher_version": match.version},
                )
                _sign_on_commit(request)
        if request.state == State.SUBMITTED:  # it waits for the committee: tell them
            notify_reviewers_of_request(request=request)
    return request


def _tier_for_sale(dataset: Dataset, tier_id: UUID | str | None) -> DatasetTier | None:
    """The ready tier `tier_id` of `dataset` (None: the whole dataset). ValidationError for
    a tier of another dataset, an unknown one, or one not (yet) for sale."""
    if tier_id in (None, ""):
        if not dataset.whole_for_sale:
            raise ValidationError(
                "This dataset is sold by region only: pick one of its tiers.",
                fields={"tier": ["Required for this dataset."]},
            )
        return None
    try:
        tier = DatasetTier.objects.filter(pk=UUID(str(tier_id)), dataset=dataset).first()
    except ValueError:
        tier = None
    if tier is None or tier.state != DatasetTier.State.READY:
        raise ValidationError(
            "This tier is not for sale: pick one listed on the dataset's page.",
            fields={"tier": ["Not a tier for sale of this dataset."]},
        )
    return tier


def _locked(request_id: UUID | str) -> AccessRequest:
    request = AccessRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise NotFound("No such request.")
    return request


# The moves a person makes on a request: the last of them says who decided what, and when.
_DECISIONS = ("request.approve", "request.reject", "request.withdraw", "request.close")


class StaleDecision(Conflict):
    """A decision made on a request that is no longer in the state the decider saw (409).

    `fields["expected_state"]` says what the request is now; the message names the last
    decision on it (who, what, when) so the decider can look before deciding again."""

    code = "stale_state"


def _last_decision(request: AccessRequest) -> str:
    """'approved by alice on 30 Nov 2026 22:10 UTC', or '' if no person decided yet."""
    entry = (
        AuditEntry.objects.filter(
            object_type="access_request", object_id=str(request.pk), action__in=_DECISIONS
        )
        .order_by("-seq")
        .first()
    )
    if entry is None:
        return ""
    verb = {"approve": "approved", "reject": "rejected", "withdraw": "withdrawn"}.get(
        entry.action.removeprefix("request."), "closed"
    )
    who = entry.actor_label or "the system"
    when = entry.created_at.astimezone(UTC).strftime("%d %b %Y %H:%M UTC")
    return f"{verb} by {who} on {when}"


def _check_undecided(request: AccessRequest, *, expected_state: str | None, verb: str) -> None:
    """Refuse a decision made on a view of the request that is out of date.

    With `expected_state` (the state the page or the caller saw), any other current state is
    stale; without it, only a request still waiting for the committee (submitted) may be
    decided, so a retry or a second tab never overturns or repeats a decision (issue 16 §3).
    Raises StaleDecision (409)."""
    stale = request.state != (expected_state or State.SUBMITTED)
    if not stale and request.can(Move.APPROVE if verb == "approve" else Move.REJECT):
        return
    decided = _last_decision(request)
    now = request.get_state_display().lower()
    message = (
        f"This request was {decided} and is now {now}" if decided else f"This request is now {now}"
    )
    raise StaleDecision(
        f"{message}: your decision to {verb} it was not recorded. Open the request to see "
        f"where it stands before deciding again: /requests/{request.pk}/",
        fields={
            "expected_state": [
                f"The request is {request.state}, not {expected_state or 'submitted'}."
            ]
        },
    )


def request_approve(
    *,
    reviewer: User,
    request_id: UUID | str,
    reason: str = "",
    expected_state: str | None = None,
) -> AccessRequest:
    """Approve a submitted request; the worker signs its voucher once this commits.

    `expected_state` is the state the reviewer saw (the web form sends the one it was
    rendered with). Raises PermissionDenied (not a reviewer), StaleDecision (409: the
    request is not in that state, or was already decided), Conflict (the purpose does not
    fit the consent)."""
    if reviewer.role not in REVIEWERS:
        raise PermissionDenied("Only the data access committee approves requests.")
    with transaction.atomic():
        request = _locked(request_id)
        _check_undecided(request, expected_state=expected_state, verb="approve")
        if not request.duo_match.get("fits"):
            raise Conflict(
                "The stated purpose does not fit the dataset's consent: "
                + " ".join(request.duo_match.get("reasons", []))
            )
        request.advance(Move.APPROVE)
        request.reviewer, request.decision_reason = reviewer, reason
        request.save(update_fields=["state", "reviewer", "decision_reason", "updated_at"])
        _record(
            request,
            action="approve",
            actor=reviewer,
            data={
                "reason": reason,
                "consent_outcome": request.duo_match.get("outcome", ""),
                "consent_matcher_version": request.consent_matcher_version,
            },
        )
        _sign_on_commit(request)
    return request


def _sign_on_commit(request: AccessRequest) -> None:
    """The worker signs the voucher once the approval is committed."""
    from marketplace.tasks import sign_voucher

    request_id = str(request.pk)
    transaction.on_commit(lambda: enqueue(sign_voucher, request_id))


def request_reject(
    *,
    reviewer: User,
    request_id: UUID | str,
    reason: str,
    expected_state: str | None = None,
) -> AccessRequest:
    """Reject a request the committee has not let go of yet (submitted or approved, before
    the voucher is signed); after that only the researcher (withdraw), the donor (consent)
    or an admin (close) ends it.

    `expected_state` as for `request_approve`: without it only a submitted request may be
    rejected. Raises PermissionDenied, ValidationError (no reason), StaleDecision (409)."""
    if reviewer.role not in REVIEWERS:
        raise PermissionDenied("Only the data access committee rejects requests.")
    if not reason.strip():
        raise ValidationError("Say why the request is rejected.", fields={"reason": ["Required."]})
    with transaction.atomic():
        request = _locked(request_id)
        _check_undecided(request, expected_state=expected_state, verb="reject")
        # A committee rejects before the voucher is signed (the table also lets a payable
        # request be rejected, for the donor's consent withdrawal).
        if request.state not in (State.SUBMITTED, State.APPROVED):
            raise StaleDecision(
                f"This request is {request.get_state_display().lower()}: its voucher is signed, "
                "so the committee can no longer reject it. An admin can close it.",
                fields={"expected_state": [f"The request is {request.state}."]},
            )
        request.advance(Move.REJECT)
        request.reviewer = reviewer
        request.decision_reason = reason.strip()
        request.save(update_fields=["state", "reviewer", "decision_reason", "updated_at"])
        _record(request, action="reject", actor=reviewer, data={"reason": reason.strip()})
    return request


def request_withdraw(*, researcher: User, request_id: UUID | str) -> AccessRequest:
    """The researcher takes the request back: before paying it simply ends; after paying
    but before the grant the escrow is refunded (the grant task then finds nothing to do,
    the row lock orders the two)."""
    with transaction.atomic():
        request = _locked(request_id)
        if request.researcher_id != researcher.pk:
            raise NotFound("No such request.")
        if request.state in (State.WITHDRAWN, State.REFUNDING):
            return request
        if request.state == State.PAID:
            request.advance(Move.REFUNDING)
            request.save(update_fields=["state", "updated_at"])
            _record(
                request,
                action="refunding",
                actor=researcher,
                data={"reason": "withdrawn by the researcher after paying"},
            )
            _refund_on_commit(request)
            return request
        if not request.can(Move.WITHDRAW):
            raise Conflict(cannot_now(request, "withdrawn"))
        was_payable = request.state == State.PAYABLE
        request.advance(Move.WITHDRAW)
        request.save(update_fields=["state", "updated_at"])
        _record(request, action="withdraw", actor=researcher)
        if was_payable:  # the voucher is cancelled on chain, so it cannot be paid later
            _cancel_on_commit(request)
    return request


def request_close(*, admin: User, request_id: UUID | str, reason: str) -> AccessRequest:
    """An admin closes a request that waits for what will not come (a wallet never linked,
    a voucher nobody pays): submitted/approved/payable -> withdrawn by Move.CLOSE, audited
    with the reason. A payable request's voucher is cancelled on chain by the worker
    (`cancel_voucher`, under the settlement rules): the web only records the intent.
    Raises PermissionDenied (not an admin), ValidationError (no reason), Conflict."""
    if admin.role != Role.ADMIN:
        raise PermissionDenied("Only an admin closes a request.")
    if not reason.strip():
        raise ValidationError("Say why the request is closed.", fields={"reason": ["Required."]})
    with transaction.atomic():
        request = _locked(request_id)
        if not request.can(Move.CLOSE):
            raise Conflict(
                f"This request is {request.get_state_display().lower()}: only a request that "
                "waits (submitted, approved or awaiting payment) can be closed."
            )
        was_payable = request.state == State.PAYABLE
        request.advance(Move.CLOSE)
        request.decision_reason = reason.strip()
        request.save(update_fields=["state", "decision_reason", "updated_at"])
        _record(
            request,
            action="close",
            actor=admin,
            data={"reason": reason.strip(), "voucher_cancelled": was_payable},
        )
        if was_payable:  # the voucher must not be payable later: the worker cancels it
            _cancel_on_commit(request)
    return request


def _cancel_on_commit(request: AccessRequest) -> None:
    from marketplace.tasks import cancel_voucher

    request_id = str(request.pk)
    transaction.on_commit(lambda: enqueue(cancel_voucher, request_id))


def _refund_on_commit(request: AccessRequest) -> None:
    from marketplace.tasks import refund_access

    request_id = str(request.pk)
    transaction.on_commit(lambda: enqueue(refund_access, request_id))
