"""Data access committees (issue 19 §1, §2): who reviews a dataset's requests and how.

A committee (DAC) owns datasets; its members review their requests. Its policy says how a
decision is made: `votes_needed == 0` and no chair's word is "one member decides" (today's
single reviewer); otherwise `votes_needed` members' votes are recorded first and, with
`chair_decides`, only the chair makes the final decision (DUOS: member votes, then the
chair's final vote). Votes are records, not lifecycle states; each is also an audit entry.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class DataAccessCommittee(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(max_length=2000, blank=True)
    # Member votes a request needs before it can be decided (0: one member decides alone).
    votes_needed = models.PositiveSmallIntegerField(default=0)
    # Only the chair makes the final decision (after the votes, if any are needed).
    chair_decides = models.BooleanField(default=False)
    # The platform's committee: owns every dataset listed without a choice. Exactly one.
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "marketplace_dac"
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="dac_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def one_member_decides(self) -> bool:
        return self.votes_needed == 0 and not self.chair_decides

    def policy_text(self) -> str:
        """The policy in words, for pages and notifications."""
        if self.one_member_decides:
            return "Any one member decides."
        votes = (
            f"{self.votes_needed} member vote{'s' if self.votes_needed != 1 else ''} first, then "
            if self.votes_needed
            else ""
        )
        who = "the chair decides" if self.chair_decides else "any member decides"
        return (votes + who + ".").capitalize()


class DacMembership(models.Model):
    class Role(models.TextChoices):
        CHAIR = "chair", "Chair"
        MEMBER = "member", "Member"

    dac = models.ForeignKey(DataAccessCommittee, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dac_memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "marketplace_dac_member"
        ordering = ["role", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["dac", "user"], name="dac_member_once"),
            models.UniqueConstraint(
                fields=["dac"], condition=models.Q(role="chair"), name="dac_one_chair"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.role}) of {self.dac_id}"


class Vote(models.Model):
    """One member's vote on one review round of a request (a resubmission starts a new
    round, so votes on the returned version are kept but no longer count)."""

    class Choice(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    request = models.ForeignKey(
        "marketplace.AccessRequest", on_delete=models.CASCADE, related_name="votes"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dac_votes"
    )
    review_round = models.PositiveSmallIntegerField()
    vote = models.CharField(max_length=8, choices=Choice.choices)
    comment = models.TextField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "marketplace_dac_vote"
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "member", "review_round"], name="dac_vote_once_per_round"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vote} by {self.member_id} on {self.request_id} (round {self.review_round})"


class RequestMessage(models.Model):
    """The request's thread: the committee's questions and the researcher's answers."""

    request = models.ForeignKey(
        "marketplace.AccessRequest", on_delete=models.CASCADE, related_name="messages"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="request_messages"
    )
    body = models.TextField(max_length=4000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "marketplace_request_message"
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"message by {self.author_id} on {self.request_id}"
