"""Committees at work (issue 19 §1, §2): admins manage DACs; members vote, return requests
for changes and ask the researcher questions; the researcher edits a returned request and
sends it again. Each operation is one transaction writing one audit entry.

The final decisions (approve, reject) are in `access_requests`, under the policy checked
there; a vote is a record (audited), never a lifecycle move.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from django.db import transaction

from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from marketplace.consent import parse_codes
from marketplace.models import (
    AccessRequest,
    DacMembership,
    DataAccessCommittee,
    RequestMessage,
    Role,
    User,
    Vote,
)
from marketplace.models.lifecycle import Move
from marketplace.selectors.access_requests import request_purpose_fit
from marketplace.services.access_requests import (
    PurposeDoesNotFit,
    _locked,
    _record,
    check_undecided,
    committee_role,
)
from marketplace.services.audit import audit_append
from marketplace.services.notifications import (
    notify_committee,
    notify_people,
    notify_reviewers_of_request,
)

State = AccessRequest.State
MAX_VOTES_NEEDED = 20


# --- committees (staff admins) -------------------------------------------------------------


def _require_admin(actor: User) -> None:
    if actor.role != Role.ADMIN:
        raise PermissionDenied("Only an admin manages data access committees.")


def _policy_checked(votes_needed: int, chair_decides: bool) -> tuple[int, bool]:
    if not 0 <= votes_needed <= MAX_VOTES_NEEDED:
        raise ValidationError(
            f"Votes needed must be between 0 and {MAX_VOTES_NEEDED}.",
            fields={"votes_needed": [f"0 to {MAX_VOTES_NEEDED}."]},
        )
    return votes_needed, bool(chair_decides)


def _dac_record(dac: DataAccessCommittee, *, action: str, actor: User, **data: object) -> None:
    audit_append(
        action=f"dac.{action}",
        actor=actor,
        object_type="dac",
        object_id=dac.pk,
        data={
            "name": dac.name,
            "votes_needed": dac.votes_needed,
            "chair_decides": dac.chair_decides,
            **data,
        },
    )


def dac_create(
    *,
    admin: User,
    name: str,
    description: str = "",
    votes_needed: int = 0,
    chair_decides: bool = False,
) -> DataAccessCommittee:
    """A new committee with its policy (no members yet). Raises PermissionDenied (not an
    admin), ValidationError (no name, a name taken, votes_needed outside 0..20)."""
    _require_admin(admin)
    name = name.strip()
    if not name:
        raise ValidationError("Name the committee.", fields={"name": ["Required."]})
    votes_needed, chair_decides = _policy_checked(votes_needed, chair_decides)
    with transaction.atomic():
        if DataAccessCommittee.objects.filter(name__iexact=name).exists():
            raise ValidationError(
                "A committee of that name exists.", fields={"name": ["Already taken."]}
            )
        dac = DataAccessCommittee.objects.create(
            name=name,
            description=description.strip(),
            votes_needed=votes_needed,
            chair_decides=chair_decides,
        )
        _dac_record(dac, action="create", actor=admin)
    return dac


def dac_update(
    *,
    admin: User,
    dac_id: UUID | str,
    description: str,
    votes_needed: int,
    chair_decides: bool,
) -> DataAccessCommittee:
    """Change a committee's policy. Requests already waiting follow the new policy (their
    votes are kept). Raises PermissionDenied, NotFound, ValidationError."""
    _require_admin(admin)
    votes_needed, chair_decides = _policy_checked(votes_needed, chair_decides)
    with transaction.atomic():
        dac = DataAccessCommittee.objects.select_for_update().filter(pk=dac_id).first()
        if dac is None:
            raise NotFound("No such committee.")
        dac.description = description.strip()
        dac.votes_needed, dac.chair_decides = votes_needed, chair_decides
        dac.save(update_fields=["description", "votes_needed", "chair_decides"])
        _dac_record(dac, action="update", actor=admin)
    return dac


def dac_member_set(
    *, admin: User, dac_id: UUID | str, user_id: UUID | str, role: str
) -> DacMembership:
    """Put `user_id` on the committee as 'chair' or 'member' (or change their role there).
    A new chair takes the place of the old one, who stays as a member. Any active account
    may sit on a committee; it then reviews that committee's datasets only. Raises
    PermissionDenied, NotFound (committee or user), ValidationError (role)."""
    _require_admin(admin)
    if role not in DacMembership.Role.values:
        raise ValidationError("The role is chair or member.", fields={"role": ["chair or member."]})
    with transaction.atomic():
        dac = DataAccessCommittee.objects.select_for_update().filter(pk=dac_id).first()
        if dac is None:
            raise NotFound("No such committee.")
        user = User.objects.filter(pk=user_id, is_active=True).first()
        if user is None:
            raise NotFound("No such user.")
        previous_chair = ""
        if role == DacMembership.Role.CHAIR:
            old = dac.members.filter(role=DacMembership.Role.CHAIR).exclude(user=user).first()
            if old is not None:
                previous_chair = old.user.username
                old.role = DacMembership.Role.MEMBER
                old.save(update_fields=["role"])
        membership, _ = DacMembership.objects.update_or_create(
            dac=dac, user=user, defaults={"role": role}
        )
        _dac_record(
            dac,
            action="member_set",
            actor=admin,
            user=str(user.pk),
            username=user.username,
            role=role,
            previous_chair=previous_chair,
        )
    return membership


def dac_member_remove(*, admin: User, dac_id: UUID | str, user_id: UUID | str) -> None:
    """Take `user_id` off the committee (their past votes stay). Raises PermissionDenied,
    NotFound."""
    _require_admin(admin)
    with transaction.atomic():
        dac = DataAccessCommittee.objects.select_for_update().filter(pk=dac_id).first()
        membership = (
            DacMembership.objects.filter(dac=dac, user_id=user_id).select_related("user").first()
            if dac is not None
            else None
        )
        if dac is None or membership is None:
            raise NotFound("No such member.")
        membership.delete()
        _dac_record(
            dac,
            action="member_remove",
            actor=admin,
            user=str(membership.user_id),
            username=membership.user.username,
        )


def staff_join_default_dac(*, user: User) -> None:
    """A new reviewer or admin account sits on the platform's committee, as today's
    reviewers were moved there by the data migration (issue 19 §1); admins move people
    between committees from there. Part of making the account (which the audit log does
    not record either); every later change of membership is an admin's audited act."""
    from marketplace.selectors.committees import dac_default

    if user.role in (Role.REVIEWER, Role.ADMIN):
        DacMembership.objects.get_or_create(dac=dac_default(), user=user)


# --- the committee's work on a request -----------------------------------------------------


def request_vote(
    *,
    member: User,
    request_id: UUID | str,
    vote: str,
    comment: str = "",
    expected_state: str | None = None,
) -> Vote:
    """One member's vote (approve or reject, with a comment) on the request's current
    review round; recorded and audited, the request's state unchanged. Voting again the
    same way returns the vote already cast; changing it is refused. When the policy's votes
    are all in, whoever makes the final decision is told.

    Raises NotFound/PermissionDenied (not on the committee, or the member's own request),
    ValidationError (vote), StaleDecision (409: the request is no longer waiting, or not in
    `expected_state`), Conflict (already voted the other way)."""
    if vote not in Vote.Choice.values:
        raise ValidationError("Vote approve or reject.", fields={"vote": ["approve or reject."]})
    comment = comment.strip()
    with transaction.atomic():
        request = _locked(request_id)
        role = committee_role(request, member)
        check_undecided(request, expected_state=expected_state, verb="vote on")
        if request.state != State.SUBMITTED:
            check_undecided(request, expected_state=State.SUBMITTED, verb="vote on")
        cast = Vote.objects.filter(
            request=request, member=member, review_round=request.review_round
        ).first()
        if cast is not None:
            if cast.vote == vote:
                return cast
            raise Conflict(
                f"You voted to {cast.vote} this request already; a vote is not changed. "
                "Add a message to the request's thread to explain a change of mind."
            )
        made = Vote.objects.create(
            request=request,
            member=member,
            review_round=request.review_round,
            vote=vote,
            comment=comment,
        )
        audit_append(
            action="request.vote",
            actor=member,
            object_type="access_request",
            object_id=request.pk,
            data={
                "state": request.state,
                "vote": vote,
                "comment": comment,
                "role": role,
                "review_round": request.review_round,
            },
        )
        dac = request.dataset.dac
        cast_now = Vote.objects.filter(request=request, review_round=request.review_round).count()
        if dac.votes_needed and cast_now == dac.votes_needed:
            who = "the chair" if dac.chair_decides else "a member"
            notify_committee(
                request=request,
                message=(
                    f"The votes on the request for “{request.dataset.title}” are in: "
                    f"{who} can now decide it."
                ),
            )
    return made


def request_return(
    *,
    member: User,
    request_id: UUID | str,
    reason: str,
    expected_state: str | None = None,
) -> AccessRequest:
    """Send a submitted request back to the researcher for changes (REMS' `returned`),
    saying what to change; the researcher edits and resubmits it, and its history stays.
    Whoever may make the final decision may return (the chair when the chair decides); the
    votes need not be in. Raises NotFound/PermissionDenied, ValidationError (no reason),
    StaleDecision (409)."""
    reason = reason.strip()
    if not reason:
        raise ValidationError(
            "Say what the researcher should change.", fields={"reason": ["Required."]}
        )
    with transaction.atomic():
        request = _locked(request_id)
        role = committee_role(request, member)
        check_undecided(request, expected_state=expected_state, verb="return")
        dac = request.dataset.dac
        if dac.chair_decides and role != DacMembership.Role.CHAIR:
            raise PermissionDenied(
                f"The chair of {dac.name} returns requests; ask the researcher a question in "
                "the thread, or vote."
            )
        request.advance(Move.RETURN)
        request.reviewer, request.decision_reason = member, reason
        request.save(update_fields=["state", "reviewer", "decision_reason", "updated_at"])
        _record(
            request,
            action="return",
            actor=member,
            data={"reason": reason, "decided_as": role, "review_round": request.review_round},
        )
    return request


def _researchers_returned(researcher: User, request_id: UUID | str) -> AccessRequest:
    request = _locked(request_id)
    if request.researcher_id != researcher.pk:
        raise NotFound("No such request.")
    return request


def request_edit(
    *,
    researcher: User,
    request_id: UUID | str,
    statement: str | None = None,
    purpose_codes: Sequence[object] | None = None,
) -> AccessRequest:
    """Change a returned request's statement and/or purpose; the consent match is made
    again. The audit entry keeps the previous text and purpose, so the history of what the
    committee saw stays. Raises NotFound (not the researcher's), Conflict (not returned),
    ValidationError (empty statement, unknown codes)."""
    with transaction.atomic():
        request = _researchers_returned(researcher, request_id)
        if request.state != State.RETURNED:
            raise Conflict(
                f"This request is {request.get_state_display().lower()}: only a request "
                "returned for changes can be edited."
            )
        previous = {"statement": request.statement, "purpose_codes": request.purpose_codes}
        if statement is not None:
            if not statement.strip():
                raise ValidationError(
                    "Describe your research.", fields={"statement": ["Required."]}
                )
            request.statement = statement.strip()
        if purpose_codes is not None:
            purpose = parse_codes(purpose_codes, field="purpose_codes")
            request.purpose_codes = [{"code": c.code, "value": c.value} for c in purpose]
        match = request_purpose_fit(dataset=request.dataset, purpose_codes=request.purpose_codes)
        if not match.allowed:  # as for a new request (issue 16 §7): it would not be sent
            raise PurposeDoesNotFit(
                "This purpose cannot fit the dataset's consent: "
                + " ".join(match.reasons)
                + " Change the purpose (or the conditions you commit to) and send it again.",
                fields={"purpose_codes": match.reasons},
            )
        request.duo_match, request.consent_matcher_version = match.as_json(), match.version
        request.save(
            update_fields=[
                "statement",
                "purpose_codes",
                "duo_match",
                "consent_matcher_version",
                "updated_at",
            ]
        )
        audit_append(
            action="request.edit",
            actor=researcher,
            object_type="access_request",
            object_id=request.pk,
            data={
                "state": request.state,
                "previous": previous,
                "purpose_codes": request.purpose_codes,
                "duo_match": match.as_json(),
            },
        )
    return request


def request_resubmit(*, researcher: User, request_id: UUID | str) -> AccessRequest:
    """Send a returned request again: it waits for the committee in a new review round
    (earlier votes are kept in its history but no longer count). Idempotent for a request
    already resubmitted. Raises NotFound, Conflict (not returned)."""
    with transaction.atomic():
        request = _researchers_returned(researcher, request_id)
        if not request.can(Move.RESUBMIT):
            raise Conflict(
                f"This request is {request.get_state_display().lower()}: only a request "
                "returned for changes can be sent again."
            )
        request.advance(Move.RESUBMIT)
        request.review_round += 1
        request.reviewer, request.decision_reason = None, ""
        request.save(
            update_fields=["state", "review_round", "reviewer", "decision_reason", "updated_at"]
        )
        _record(
            request,
            action="resubmit",
            actor=researcher,
            data={"review_round": request.review_round},
        )
        notify_reviewers_of_request(request=request)
    return request


def request_message_post(*, author: User, request_id: UUID | str, body: str) -> RequestMessage:
    """A message in the request's thread, from its researcher or a member of its
    committee (a question, an answer). The other side is told (the researcher, or the
    committee's members), and so are the author's fellow members. Raises NotFound (the
    author may not see the request), PermissionDenied (the donor or an admin outside the
    committee), ValidationError (empty or too long)."""
    body = body.strip()
    if not body:
        raise ValidationError("Write a message.", fields={"body": ["Required."]})
    if len(body) > 4000:
        raise ValidationError("At most 4000 characters.", fields={"body": ["Too long."]})
    with transaction.atomic():
        request = _locked(request_id)
        from_researcher = request.researcher_id == author.pk
        if not from_researcher:
            committee_role(request, author)
        message = RequestMessage.objects.create(request=request, author=author, body=body)
        audit_append(
            action="request.message",
            actor=author,
            object_type="access_request",
            object_id=request.pk,
            data={
                "state": request.state,
                "message": message.pk,
                "from": "researcher" if from_researcher else "committee",
            },
        )
        title = request.dataset.title
        if from_researcher:
            notify_committee(
                request=request,
                message=f"The researcher wrote on the request for “{title}”: {body[:200]}",
            )
        else:
            notify_people(
                people=[request.researcher],
                request=request,
                message=f"The committee asks about your request for “{title}”: {body[:200]}",
            )
            notify_committee(
                request=request,
                message=f"{author.username} wrote to the researcher on “{title}”: {body[:200]}",
                exclude=author,
            )
    return message
