"""Committees (issue 19 §1, §2) on PostgreSQL: each new transition (vote, final decision,
return, resubmit) writes exactly one audit entry; the policy (N votes, then the chair's
final word) is enforced; stale votes and decisions answer 409; the request's thread tells
both sides; a donor picks a committee; the data migration seats today's reviewers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.errors import Conflict, NotFound, PermissionDenied
from marketplace.models import (
    AccessRequest,
    AuditEntry,
    DacMembership,
    DataAccessCommittee,
    Dataset,
    Notification,
    Role,
    User,
    Vote,
)
from marketplace.selectors.committees import dac_default
from marketplace.services.access_requests import (
    StaleDecision,
    VotesMissing,
    request_approve,
    request_reject,
    request_submit,
)
from marketplace.services.audit import audit_views
from marketplace.services.committees import (
    request_edit,
    request_message_post,
    request_resubmit,
    request_return,
    request_vote,
)
from marketplace.services.datasets import dataset_create
from tests.factories import ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _on_postgresql(db: None) -> None:
    # The acceptance asks for these transitions on PostgreSQL (row locks, constraints).
    assert connection.vendor == "postgresql", "run with DATABASE_URL=postgres://..."


def api(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


class Committee:
    """A two-member DAC with a chair (DUOS style: 2 votes, then the chair decides), a
    dataset it owns and a researcher's submitted request on it."""

    def __init__(self, make_user: Callable[..., User]) -> None:
        self.chair = make_user(Role.REVIEWER, username="chair")
        self.member = make_user(Role.REVIEWER, username="member")
        self.dac = DataAccessCommittee.objects.create(
            name="Cardiology DAC", votes_needed=2, chair_decides=True
        )
        DacMembership.objects.create(dac=self.dac, user=self.chair, role="chair")
        DacMembership.objects.create(dac=self.dac, user=self.member, role="member")
        self.donor = make_user(Role.DONOR)
        self.researcher = make_user(Role.RESEARCHER)
        self.dataset = dataset_create(
            donor=self.donor,
            title="Heart cohort",
            description="",
            files=[ready_file(self.donor).pk],
            duo_codes=["DUO:0000042"],
            price="1000",
            access_days=30,
            review="committee",
            dac=str(self.dac.pk),
        )
        self.request = request_submit(
            researcher=self.researcher,
            dataset_id=self.dataset.pk,
            purpose_codes=["DUO:0000042"],
            statement="Cardiomyopathy variants.",
            accept_terms=True,
        )

    def state(self) -> str:
        self.request.refresh_from_db()
        return self.request.state


@pytest.fixture
def committee(make_user: Callable[..., User]) -> Committee:
    return Committee(make_user)


def one_entry(action: str, call: Callable[[], Any]) -> Any:
    """Run `call`; exactly one audit entry is written, and it is `action`."""
    before = AuditEntry.objects.count()
    result = call()
    written = list(AuditEntry.objects.filter(seq__gt=before).order_by("seq"))
    assert [e.action for e in written] == [action], [e.action for e in written]
    return result, written[0]


def test_a_vote_is_one_audit_entry_and_no_state_change(committee: Committee) -> None:
    vote, entry = one_entry(
        "request.vote",
        lambda: request_vote(
            member=committee.member,
            request_id=committee.request.pk,
            vote="approve",
            comment="Ethics letter seen.",
        ),
    )
    assert committee.state() == "submitted"
    # Who and what they typed are beside the hashed entry (README "Donors' rights").
    view = audit_views([entry])[0]
    assert view.who == "member"
    assert entry.data["vote"] == "approve" and view.fields["comment"] == "Ethics letter seen."
    assert entry.data["role"] == "member" and entry.data["review_round"] == 1
    # Voting again the same way changes nothing; the other way is refused.
    again = request_vote(member=committee.member, request_id=committee.request.pk, vote="approve")
    assert again.pk == vote.pk and Vote.objects.count() == 1
    with pytest.raises(Conflict):
        request_vote(member=committee.member, request_id=committee.request.pk, vote="reject")


def test_the_chair_decides_only_once_the_votes_are_in(committee: Committee) -> None:
    request_id = committee.request.pk
    with pytest.raises(VotesMissing):
        request_approve(reviewer=committee.chair, request_id=request_id, reason="ok")
    request_vote(member=committee.member, request_id=request_id, vote="approve")
    request_vote(member=committee.chair, request_id=request_id, vote="reject", comment="Hmm")
    with pytest.raises(PermissionDenied):  # a member votes; the chair has the final word
        request_approve(reviewer=committee.member, request_id=request_id, reason="ok")
    _, entry = one_entry(
        "request.approve",
        lambda: request_approve(reviewer=committee.chair, request_id=request_id, reason="Fits."),
    )
    assert committee.state() == "approved"
    assert committee.request.reviewer == committee.chair  # the decision names who decided
    assert audit_views([entry])[0].who == "chair" and entry.data["decided_as"] == "chair"
    assert entry.data["votes"] == {"member": "approve", "chair": "reject"}
    assert entry.data["policy"] == {"votes_needed": 2, "chair_decides": True}


def test_a_final_rejection_is_one_audit_entry(committee: Committee) -> None:
    request_id = committee.request.pk
    for person in (committee.member, committee.chair):
        request_vote(member=person, request_id=request_id, vote="reject")
    one_entry(
        "request.reject",
        lambda: request_reject(reviewer=committee.chair, request_id=request_id, reason="No."),
    )
    assert committee.state() == "rejected"


def test_return_edit_and_resubmit_keep_the_history(committee: Committee) -> None:
    request_id = committee.request.pk
    request_vote(member=committee.member, request_id=request_id, vote="approve")
    with pytest.raises(PermissionDenied):  # under chair_decides the chair returns
        request_return(member=committee.member, request_id=request_id, reason="More detail")
    _, entry = one_entry(
        "request.return",
        lambda: request_return(
            member=committee.chair, request_id=request_id, reason="Name the control cohort."
        ),
    )
    assert (
        committee.state() == "returned"
        and audit_views([entry])[0].fields["reason"] == "Name the control cohort."
    )
    with pytest.raises(StaleDecision):  # nothing to vote on while it is with the researcher
        request_vote(member=committee.chair, request_id=request_id, vote="approve")
    with pytest.raises(NotFound):  # only its researcher edits it
        request_edit(researcher=committee.member, request_id=request_id, statement="x")
    _, edit = one_entry(
        "request.edit",
        lambda: request_edit(
            researcher=committee.researcher,
            request_id=request_id,
            statement="Cardiomyopathy variants against the UK Biobank controls.",
        ),
    )
    assert edit.data["previous"]["statement"] == "Cardiomyopathy variants."
    _, resubmit = one_entry(
        "request.resubmit",
        lambda: request_resubmit(researcher=committee.researcher, request_id=request_id),
    )
    assert committee.state() == "submitted" and committee.request.review_round == 2
    assert resubmit.data["review_round"] == 2
    # The first round's vote is kept but no longer counts: two new votes are needed.
    with pytest.raises(VotesMissing):
        request_approve(reviewer=committee.chair, request_id=request_id)
    for person in (committee.member, committee.chair):
        request_vote(member=person, request_id=request_id, vote="approve")
    request_approve(reviewer=committee.chair, request_id=request_id, reason="Fits now.")
    assert committee.state() == "approved"
    assert Vote.objects.filter(request_id=request_id).count() == 3
    timeline = [
        e.action for e in AuditEntry.objects.filter(object_id=str(request_id)).order_by("seq")
    ]
    assert timeline == [
        "request.submit",
        "request.vote",
        "request.return",
        "request.edit",
        "request.resubmit",
        "request.vote",
        "request.vote",
        "request.approve",
    ]


def test_stale_votes_and_decisions_answer_409_through_the_api(committee: Committee) -> None:
    path = f"/api/v1/access-requests/{committee.request.pk}"
    chair = api(committee.chair)
    returned = chair.post(f"{path}/return", {"reason": "Name the cohort."}, format="json")
    assert returned.status_code == 200 and returned.json()["state"] == "returned"
    # Pages rendered before the return still say "submitted".
    seen = {"expected_state": "submitted"}
    vote = api(committee.member).post(f"{path}/votes", {"vote": "approve", **seen}, format="json")
    assert vote.status_code == 409 and vote.json()["error"]["code"] == "stale_state"
    assert "returned by chair" in vote.json()["error"]["message"]
    decide = chair.post(f"{path}/approve", {"reason": "ok", **seen}, format="json")
    assert decide.status_code == 409 and decide.json()["error"]["code"] == "stale_state"
    again = chair.post(f"{path}/return", {"reason": "Twice", **seen}, format="json")
    assert again.status_code == 409
    # Votes missing is its own 409, after a resubmission.
    researcher = api(committee.researcher)
    assert researcher.patch(path, {"statement": "Changed."}, format="json").status_code == 200
    assert researcher.post(f"{path}/resubmit").json()["review_round"] == 2
    missing = chair.post(f"{path}/approve", {"reason": "ok"}, format="json")
    assert missing.status_code == 409 and missing.json()["error"]["code"] == "votes_missing"
    assert not Vote.objects.exists()


def test_a_question_in_the_thread_tells_both_sides(committee: Committee) -> None:
    request_id = committee.request.pk
    Notification.objects.all().delete()
    one_entry(
        "request.message",
        lambda: request_message_post(
            author=committee.member, request_id=request_id, body="Which ethics board?"
        ),
    )
    told = set(Notification.objects.values_list("user__username", flat=True))
    assert told == {committee.researcher.username, "chair"}  # not the author
    Notification.objects.all().delete()
    request_message_post(
        author=committee.researcher, request_id=request_id, body="The Leeds REC, 22/YH/0001."
    )
    told = set(Notification.objects.values_list("user__username", flat=True))
    assert told == {"chair", "member"}
    with pytest.raises(PermissionDenied):  # the donor sees the request, not the thread's pen
        request_message_post(author=committee.donor, request_id=request_id, body="Hi")
    thread = api(committee.researcher).get(f"/api/v1/access-requests/{request_id}/messages")
    assert [m["from_researcher"] for m in thread.json()] == [False, True]


def test_only_the_committee_is_told_and_sees_a_new_request(
    committee: Committee, make_user: Callable[..., User]
) -> None:
    platform_reviewer = make_user(Role.REVIEWER)  # sits on the platform committee only
    told = set(
        Notification.objects.filter(request=committee.request).values_list(
            "user__username", flat=True
        )
    )
    assert {"chair", "member"} <= told and platform_reviewer.username not in told
    listed = api(platform_reviewer).get("/api/v1/access-requests").json()["results"]
    assert listed == []
    page = logged_in(platform_reviewer).get(f"/requests/{committee.request.pk}/")
    assert page.status_code == 404


def test_a_donor_picks_a_committee_or_gets_the_platforms(committee: Committee) -> None:
    body = {
        "title": "Another cohort",
        "files": [str(ready_file(committee.donor).pk)],
        "duo_codes": ["DUO:0000042"],
        "price": "5",
        "access_days": 10,
        "review": "auto",
    }
    default = api(committee.donor).post("/api/v1/datasets", body, format="json").json()
    assert default["dac"] == str(dac_default().pk)
    body["files"] = [str(ready_file(committee.donor).pk)]
    chosen = api(committee.donor).post(
        "/api/v1/datasets", {**body, "dac": str(committee.dac.pk)}, format="json"
    )
    assert chosen.json()["dac"] == str(committee.dac.pk)
    body["files"] = [str(ready_file(committee.donor).pk)]
    unknown = api(committee.donor).post(
        "/api/v1/datasets", {**body, "dac": str(committee.request.pk)}, format="json"
    )
    assert unknown.status_code == 400 and "dac" in unknown.json()["error"]["fields"]


def test_the_chairs_page_shows_votes_fit_and_the_decision(committee: Committee) -> None:
    request_id = committee.request.pk
    request_vote(member=committee.member, request_id=request_id, vote="approve", comment="Fine")
    chair_page = logged_in(committee.chair).get(f"/requests/{request_id}/").content.decode()
    assert "1 of 2 votes cast" in chair_page and "Fine" in chair_page
    assert "The purpose fits the donor" in chair_page and "data-agreement" in chair_page
    assert "data-vote-form" in chair_page and "1 more vote before the decision" in chair_page
    member_page = logged_in(committee.member).get(f"/requests/{request_id}/").content.decode()
    assert "You voted to approve" in member_page and "/approve" not in member_page
    queue = logged_in(committee.chair).get("/review/").content.decode()
    assert "Waiting for your vote" in queue and "Heart cohort" in queue


def test_the_researcher_changes_a_returned_request_on_its_page(committee: Committee) -> None:
    request_return(member=committee.chair, request_id=committee.request.pk, reason="Say more.")
    client = logged_in(committee.researcher)
    page = client.get(f"/requests/{committee.request.pk}/edit/")
    assert page.status_code == 200 and "Say more." in page.content.decode()
    sent = client.post(
        f"/requests/{committee.request.pk}/edit/",
        {"permission": "DUO:0000042", "statement": "More: controls from UK Biobank."},
    )
    assert sent.status_code == 302
    assert committee.state() == "submitted"
    assert committee.request.statement == "More: controls from UK Biobank."


def test_a_non_staff_member_reviews_and_passes_the_second_factor(
    committee: Committee, make_user: Callable[..., User]
) -> None:
    """API.md: any account may sit on a committee; its web sign-in then needs the second
    factor, as staff's does."""
    from django.test import Client

    biobank = make_user(Role.DONOR)
    committee.dac.members.create(user=biobank, role="member")
    plain = Client()
    plain.force_login(biobank)
    assert plain.get("/review/")["Location"].startswith("/accounts/second-factor/")
    assert logged_in(biobank).get("/review/").status_code == 200


def test_the_lifecycle_table_holds_the_committee_moves() -> None:
    from marketplace.models.lifecycle import Move, can, target_of

    assert target_of(Move.RETURN) == "returned" and can("submitted", Move.RETURN)
    assert target_of(Move.RESUBMIT) == "submitted" and can("returned", Move.RESUBMIT)
    assert not can("returned", Move.APPROVE) and can("returned", Move.WITHDRAW)
    assert not can("approved", Move.RETURN)


def test_the_data_migration_seats_todays_reviewers_on_the_platform_committee(
    transactional_db: None,
) -> None:
    from django.core.management import call_command
    from django.db.migrations.executor import MigrationExecutor

    try:
        call_command("migrate", "marketplace", "0015", verbosity=0)
        old = MigrationExecutor(connection).loader.project_state(("marketplace", "0015_visas")).apps
        old_user = old.get_model("marketplace", "User")
        old_dataset = old.get_model("marketplace", "Dataset")
        reviewer = old_user.objects.create(username="old-reviewer", role="reviewer")
        donor = old_user.objects.create(username="old-donor", role="donor")
        old_user.objects.create(username="old-researcher", role="researcher")
        old_dataset.objects.create(
            donor=donor, title="Old", price=1, access_days=1, record_hash="0" * 64
        )
        call_command("migrate", "marketplace", verbosity=0)
    finally:
        call_command("migrate", verbosity=0)
    dac = DataAccessCommittee.objects.get(is_default=True)
    assert list(dac.members.values_list("user__username", flat=True)) == [reviewer.username]
    assert Dataset.objects.get(title="Old").dac == dac
    assert AccessRequest.objects.count() == 0
