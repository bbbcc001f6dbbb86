"""Committee reads: which DAC owns what, who sits on it, and where a request's review
stands (issue 19 §1, §2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from core.errors import NotFound
from marketplace.models import (
    AccessRequest,
    DacMembership,
    DataAccessCommittee,
    RequestMessage,
    User,
    Vote,
)

DEFAULT_DAC_NAME = "Platform committee"


def dac_default() -> DataAccessCommittee:
    """The platform's committee (policy: one member decides). The data migration makes it;
    it is made again here if missing (a test database flushed between tests)."""
    found = DataAccessCommittee.objects.filter(is_default=True).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return DataAccessCommittee.objects.create(name=DEFAULT_DAC_NAME, is_default=True)
    except IntegrityError:  # made by a concurrent caller meanwhile
        return DataAccessCommittee.objects.get(is_default=True)


def dac_list() -> QuerySet[DataAccessCommittee]:
    return DataAccessCommittee.objects.prefetch_related("members__user")


def dac_get(*, dac_id: object) -> DataAccessCommittee:
    """Raises NotFound for an unknown id (or one that is not a UUID)."""
    try:
        key = uuid.UUID(str(dac_id))
    except ValueError:
        raise NotFound("No such committee.") from None
    found = dac_list().filter(pk=key).first()
    if found is None:
        raise NotFound("No such committee.")
    return found


def member_dac_ids(*, user: User) -> set[object]:
    """The committees `user` sits on (any role)."""
    if not user.is_authenticated:
        return set()
    return set(DacMembership.objects.filter(user=user).values_list("dac_id", flat=True))


def is_committee_member(user: object) -> bool:
    """Whether `user` sits on any committee: they then review, and sign in as staff do."""
    return bool(
        isinstance(user, User)
        and user.is_authenticated
        and DacMembership.objects.filter(user=user).exists()
    )


def membership_role(*, user: User, dac_id: uuid.UUID) -> str | None:
    """'chair', 'member', or None when `user` is not on committee `dac_id`."""
    return (
        DacMembership.objects.filter(user=user, dac_id=dac_id)
        .values_list("role", flat=True)
        .first()
    )


def dac_chair(*, dac: DataAccessCommittee) -> User | None:
    member = dac.members.filter(role=DacMembership.Role.CHAIR).select_related("user").first()
    return member.user if member else None


@dataclass(frozen=True)
class ReviewStatus:
    """Where the committee stands on a request's current round: the votes cast (oldest
    first), how many the policy needs, and who may make the final decision now."""

    votes: list[Vote]
    votes_needed: int
    chair_decides: bool
    approvals: int
    rejections: int

    @property
    def votes_missing(self) -> int:
        return max(0, self.votes_needed - len(self.votes))

    def voted(self, user: User) -> Vote | None:
        return next((v for v in self.votes if v.member_id == user.pk), None)


def request_review_status(*, request: AccessRequest) -> ReviewStatus:
    dac = request.dataset.dac
    votes = list(
        Vote.objects.filter(request=request, review_round=request.review_round).select_related(
            "member"
        )
    )
    return ReviewStatus(
        votes=votes,
        votes_needed=dac.votes_needed,
        chair_decides=dac.chair_decides,
        approvals=sum(1 for v in votes if v.vote == Vote.Choice.APPROVE),
        rejections=sum(1 for v in votes if v.vote == Vote.Choice.REJECT),
    )


def request_votes_all(*, request: AccessRequest) -> list[Vote]:
    """Every vote on every round (a returned request keeps its history)."""
    return list(Vote.objects.filter(request=request).select_related("member"))


def request_thread(*, request: AccessRequest) -> list[RequestMessage]:
    return list(RequestMessage.objects.filter(request=request).select_related("author"))


def pending_votes(*, user: User) -> QuerySet[AccessRequest]:
    """Submitted requests on `user`'s committees that wait for a vote and that `user` has
    not voted on in their current round: the member's to-do list."""
    from django.db.models import Exists, F, OuterRef

    mine = Vote.objects.filter(
        request=OuterRef("pk"), member=user, review_round=OuterRef("review_round")
    )
    return (
        AccessRequest.objects.filter(
            state=AccessRequest.State.SUBMITTED,
            dataset__dac__members__user=user,
            dataset__dac__votes_needed__gt=0,
        )
        .exclude(researcher=user)
        .annotate(voted=Exists(mine))
        .filter(voted=False)
        .select_related("dataset", "dataset__donor", "researcher")
        .order_by(F("created_at").asc())
    )
