"""The access-request lifecycle, one service function per transition.

Each transition locks the request's row, checks who may make it and from which states,
changes the state and writes one audit entry, all in one transaction; asking for a
transition the request already made returns it unchanged (idempotent).

This module holds the researcher's and the committee's transitions (submit, approve,
reject, withdraw); `committees` holds the committee's votes, returns and the thread;
`settlement` holds those the worker and the chain drive.

Who decides (issue 19 §1, §2): the members of the committee (DAC) that owns the dataset,
under its policy. Anyone else gets NotFound (they cannot see the request) or, for an admin
who oversees every request but does not sit on that committee, PermissionDenied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.queue import enqueue
from marketplace.consent import parse_codes
from marketplace.models import AccessRequest, AuditEntry, Dataset, DatasetTier, Role, User, Vote
from marketplace.models.committees import DacMembership
from marketplace.models.lifecycle import Move, state_in_words
from marketplace.models.requests import cannot_now
from marketplace.selectors.access_requests import request_open_for, request_purpose_fit
from marketplace.selectors.blocklist import blocked_from
from marketplace.services.agreements import agreement_accepted
from marketplace.services.audit import audit_append, audit_views
from marketplace.services.notifications import (
    notify_request_change,
    notify_reviewers_of_request,
)

State = AccessRequest.State


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
    agreement_sha256: str | None = None,
    renews: AccessRequest | None = None,
    tier_id: UUID | str | None = None,
) -> AccessRequest:
    """Ask for access to the whole dataset, or to one of its region tiers (`tier_id`, at
    the tier's price; README "Selling regions"). An `auto` dataset approves a fitting
    purpose at once; otherwise (or when it needs review) the committee decides.

    Raises PurposeDoesNotFit (400) for a purpose that cannot fit the consent (nothing is
    stored: DESIGN "an incompatible purpose cannot be approved", so it is not sent), and
    DuplicateRequest (409) while the researcher has an open request for the dataset and
    scope (issue 16 §7). A dataset with a data access agreement needs `agreement_sha256`, the
    SHA-256 of the exact version the researcher read (ValidationError without it,
    AgreementChanged 409 when it is not the current one). A researcher blocked from the
    dataset is refused (PermissionDenied, 403, with the block's reason). `renews` names the
    live request a renewal extends (`marketplace.services.renewals.request_renew` checks
    it); a renewal is its own kind and is no duplicate."""
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
    block = blocked_from(dataset=dataset, researcher=researcher)
    if block is not None:
        raise PermissionDenied(
            f"You may not request this dataset: you were blocked from it on "
            f"{block.created_at:%d %b %Y}. Reason: {block.reason} If you believe this is a "
            "mistake, write to the platform's staff."
        )
    match = request_purpose_fit(dataset=dataset, purpose_codes=purpose_codes)
    if not match.allowed:
        raise PurposeDoesNotFit(
            "This purpose cannot fit the dataset's consent: "
            + " ".join(match.reasons)
            + " Change the purpose (or the conditions you commit to) and send it again.",
            fields={"purpose_codes": match.reasons},
        )
    agreement = agreement_accepted(dataset=dataset, sha256=agreement_sha256)
    tier = _tier_for_sale(dataset, tier_id)
    purpose = parse_codes(purpose_codes, field="purpose_codes")
    with transaction.atomic():
        # The dataset's row lock orders two sendings of the same form (back + resubmit, a
        # double click), so the second sees the first and is refused in words.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        if renews is None:
            _refuse_duplicate(researcher=researcher, dataset=dataset, tier=tier)
        try:
            with transaction.atomic():
                request = AccessRequest.objects.create(
                    dataset=dataset,
                    researcher=researcher,
                    statement=statement.strip(),
                    purpose_codes=[{"code": c.code, "value": c.value} for c in purpose],
                    duo_match=match.as_json(),
                    consent_matcher_version=match.version,
                    tier=tier,
                    amount=tier.price if tier is not None else dataset.price,
                    agreement=agreement,
                    renews=renews,
                )
        except IntegrityError:  # the partial unique index, should the lock not have held
            _refuse_duplicate(researcher=researcher, dataset=dataset, tier=tier)
            raise
        accepted = {"version": agreement.version, "sha256": agreement.sha256} if agreement else None
        _record(
            request,
            action="submit",
            actor=researcher,
            data={
                "duo_match": match.as_json(),
                "agreement": accepted,
                "renews": str(renews.pk) if renews else None,
                "scope": tier.scope() if tier is not None else "whole",
                "amount": str(request.amount),
            },
        )
        if dataset.review == Dataset.Review.AUTO and match.auto_approvable:
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


class PurposeDoesNotFit(ValidationError):
    """The purpose cannot fit the dataset's consent (400); `fields["purpose_codes"]` holds
    the matcher's reason per rule that does not fit."""

    code = "purpose_does_not_fit"


class DuplicateRequest(Conflict):
    """The researcher already has an open request for this dataset (409).

    `fields["dataset"]` carries the open request's id; `open_request` is that request."""

    code = "duplicate_request"

    def __init__(self, message: str, *, open_request: AccessRequest) -> None:
        super().__init__(message, fields={"dataset": [f"Open request {open_request.pk}."]})
        self.open_request = open_request


def _refuse_duplicate(
    *, researcher: User, dataset: Dataset, tier: DatasetTier | None = None
) -> None:
    """One open request per researcher, dataset and scope (the whole, or one tier; issue
    16 §7): a second, often back + resubmit, is refused with a pointer to the first.
    Raises DuplicateRequest."""
    found = request_open_for(researcher=researcher, dataset=dataset, tier=tier)
    if found is None:
        return
    raise DuplicateRequest(
        f"You already have an open request for this dataset, sent "
        f"{found.created_at.astimezone(UTC):%d %b %Y %H:%M} UTC and now "
        f"{state_in_words(found.state)}: follow it at "
        f"{settings.SITE_URL}{reverse('web:request', args=[found.pk])}. To ask differently, "
        "withdraw it there first; once it has ended you may ask again.",
        open_request=found,
    )


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
_DECISIONS = (
    "request.approve",
    "request.reject",
    "request.withdraw",
    "request.close",
    "request.return",
)


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
    verb = {
        "approve": "approved",
        "reject": "rejected",
        "withdraw": "withdrawn",
        "return": "returned",
    }.get(entry.action.removeprefix("request."), "closed")
    who = audit_views([entry])[0].who
    who = "the system" if who == "system" else who
    when = entry.created_at.astimezone(UTC).strftime("%d %b %Y %H:%M UTC")
    return f"{verb} by {who} on {when}"


_VERB_MOVES = {"approve": Move.APPROVE, "reject": Move.REJECT, "return": Move.RETURN}


def check_undecided(request: AccessRequest, *, expected_state: str | None, verb: str) -> None:
    """Refuse a decision made on a view of the request that is out of date.

    With `expected_state` (the state the page or the caller saw), any other current state is
    stale; without it, only a request still waiting for the committee (submitted) may be
    decided, so a retry or a second tab never overturns or repeats a decision (issue 16 §3).
    Raises StaleDecision (409)."""
    stale = request.state != (expected_state or State.SUBMITTED)
    if not stale and (verb not in _VERB_MOVES or request.can(_VERB_MOVES[verb])):
        return
    decided = _last_decision(request)
    now = state_in_words(request.state)
    message = (
        f"This request was {decided} and is now {now}" if decided else f"This request is now {now}"
    )
    raise StaleDecision(
        f"{message}: your decision to {verb} it was not recorded. Open the request to see "
        f"where it stands before deciding again: /requests/{request.pk}/",
        fields={
            "expected_state": [
                f"The request is {state_in_words(request.state)}, not "
                f"{state_in_words(expected_state or State.SUBMITTED)}."
            ]
        },
    )


def committee_role(request: AccessRequest, user: User) -> str:
    """`user`'s role ('chair' or 'member') on the committee that owns the request's
    dataset. Raises NotFound when `user` may not even see the request, PermissionDenied
    when they may see it but do not sit on that committee or made the request."""
    role = (
        DacMembership.objects.filter(user=user, dac_id=request.dataset.dac_id)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        if user.role == Role.ADMIN or user.pk in (request.researcher_id, request.dataset.donor_id):
            raise PermissionDenied(
                "Only the members of the dataset's data access committee review its requests."
            )
        raise NotFound("No such request.")
    if request.researcher_id == user.pk:
        raise PermissionDenied("A committee member does not review their own request.")
    return str(role)


class VotesMissing(Conflict):
    """The committee's policy wants more member votes before the decision (409)."""

    code = "votes_missing"


def _check_may_decide(request: AccessRequest, user: User, *, verb: str) -> dict[str, object]:
    """Apply the committee's policy to a final decision on a submitted request: under
    `chair_decides` only the chair decides; the policy's votes must be in first. Returns
    what the audit entry records of it: the deciding role, the policy and the tally.
    Raises PermissionDenied, VotesMissing, NotFound (see `committee_role`)."""
    role = committee_role(request, user)
    dac = request.dataset.dac
    if request.state != State.SUBMITTED:  # e.g. rejecting an approved request: no votes
        return {"decided_as": role}
    if dac.chair_decides and role != DacMembership.Role.CHAIR:
        raise PermissionDenied(
            f"The chair of {dac.name} makes the final decision; members vote. "
            f"Record your view as a vote instead."
        )
    votes = list(
        Vote.objects.filter(request=request, review_round=request.review_round).values_list(
            "member__username", "vote"
        )
    )
    if len(votes) < dac.votes_needed:
        missing = dac.votes_needed - len(votes)
        raise VotesMissing(
            f"{dac.name} decides after {dac.votes_needed} member votes; "
            f"{missing} more {'is' if missing == 1 else 'are'} needed before this request "
            f"can be {verb}d.",
            fields={"votes": [f"{len(votes)} of {dac.votes_needed} cast."]},
        )
    return {
        "decided_as": role,
        "dac": str(dac.pk),
        "policy": {"votes_needed": dac.votes_needed, "chair_decides": dac.chair_decides},
        "votes": {member: vote for member, vote in votes},
        "review_round": request.review_round,
    }


def request_approve(
    *,
    reviewer: User,
    request_id: UUID | str,
    reason: str = "",
    expected_state: str | None = None,
) -> AccessRequest:
    """Approve a submitted request; the worker signs its voucher once this commits.

    `expected_state` is the state the reviewer saw (the web form sends the one it was
    rendered with). Raises NotFound/PermissionDenied (not on the dataset's committee, or
    not its chair when the chair decides), StaleDecision (409: the request is not in that
    state, or was already decided), VotesMissing (409: the policy's votes are not all in),
    Conflict (the purpose does not fit the consent)."""
    with transaction.atomic():
        request = _locked(request_id)
        committee_role(request, reviewer)
        check_undecided(request, expected_state=expected_state, verb="approve")
        policy = _check_may_decide(request, reviewer, verb="approve")
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
                **policy,
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
    rejected. Raises NotFound/PermissionDenied and VotesMissing as `request_approve`,
    ValidationError (no reason), StaleDecision (409)."""
    if not reason.strip():
        raise ValidationError("Say why the request is rejected.", fields={"reason": ["Required."]})
    with transaction.atomic():
        request = _locked(request_id)
        committee_role(request, reviewer)
        check_undecided(request, expected_state=expected_state, verb="reject")
        # A committee rejects before the voucher is signed (the table also lets a payable
        # request be rejected, for the donor's consent withdrawal).
        if request.state not in (State.SUBMITTED, State.APPROVED):
            raise StaleDecision(
                f"This request is {state_in_words(request.state)}: its voucher is signed, "
                "so the committee can no longer reject it. An admin can close it.",
                fields={"expected_state": [f"The request is {state_in_words(request.state)}."]},
            )
        policy = _check_may_decide(request, reviewer, verb="reject")
        request.advance(Move.REJECT)
        request.reviewer = reviewer
        request.decision_reason = reason.strip()
        request.save(update_fields=["state", "reviewer", "decision_reason", "updated_at"])
        _record(request, action="reject", actor=reviewer, data={"reason": reason.strip(), **policy})
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
                f"This request is {state_in_words(request.state)}: only a request that "
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
