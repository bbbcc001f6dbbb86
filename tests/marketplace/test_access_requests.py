"""Access requests before payment: submit, automatic and committee decisions, withdraw;
who may see and do what."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from marketplace.models import AccessRequest, AuditEntry, Role
from tests.factories import ready_file

pytestmark = pytest.mark.django_db
REQUESTS = "/api/v1/access-requests"


@pytest.fixture
def listing(client_for):
    def make(review: str = "committee", codes: list | None = None) -> tuple[str, object]:
        client, donor = client_for(Role.DONOR)
        response = client.post(
            "/api/v1/datasets",
            {
                "title": "Cohort",
                "description": "",
                "files": [str(ready_file(donor).pk)],
                "duo_codes": codes or ["DUO:0000006", "DUO:0000046"],
                "price": "1000",
                "access_days": 30,
                "review": review,
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        return response.json()["id"], (client, donor)

    return make


def ask(client: APIClient, dataset: str, purpose: list, **extra):
    return client.post(
        REQUESTS,
        {
            "dataset": dataset,
            "purpose_codes": purpose,
            "statement": "Polygenic risk of T2D.",
            "accept_terms": True,
            **extra,
        },
        format="json",
    )


FITTING = ["DUO:0000006", "DUO:0000046"]


def test_a_committee_request_waits_for_review(listing, client_for) -> None:
    dataset, _ = listing()
    client, _ = client_for(Role.RESEARCHER)
    response = ask(client, dataset, FITTING)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "submitted" and body["duo_match"]["fits"]
    assert body["amount"] == "1000"
    assert [step["action"] for step in body["timeline"]] == ["submit"]


def test_auto_review_approves_a_fitting_purpose_at_once(listing, client_for) -> None:
    dataset, _ = listing(review="auto")
    client, _ = client_for(Role.RESEARCHER)
    body = ask(client, dataset, FITTING).json()
    assert body["state"] == "approved"
    assert [step["action"] for step in body["timeline"]] == ["submit", "approve"]
    assert body["timeline"][1]["by"] == "system"


@pytest.mark.parametrize("review", ["auto", "committee"])
def test_a_purpose_that_cannot_fit_is_refused_and_nothing_is_sent(
    listing, client_for, review: str
) -> None:
    """Issue 16 §7: a purpose that cannot fit is not sent (400 with the matcher's reasons),
    whatever the review policy; the reviewers are not asked to refuse it."""
    dataset, _ = listing(review=review)
    client, _ = client_for(Role.RESEARCHER)
    refused = ask(client, dataset, ["DUO:0000006"])  # no commitment to NCU
    assert refused.status_code == 400, refused.json()
    error = refused.json()["error"]
    assert error["code"] == "purpose_does_not_fit"
    assert "NCU" in error["message"] and "Change the purpose" in error["message"]
    assert any("NCU" in reason for reason in error["fields"]["purpose_codes"])
    assert not AccessRequest.objects.exists()
    assert ask(client, dataset, FITTING).status_code == 201  # the fixed purpose is sent


def test_an_incompatible_purpose_can_never_be_approved(listing, client_for) -> None:
    """A request stored as not fitting (before the form refused such purposes, or by a
    matcher of another version) still cannot be approved."""
    dataset, _ = listing()
    _, researcher_user = client_for(Role.RESEARCHER)
    request = AccessRequest.objects.create(
        dataset_id=dataset,
        researcher=researcher_user,
        statement="Ancestry.",
        purpose_codes=[{"code": "DUO:0000011", "value": ""}],
        duo_match={"outcome": "does_not_fit", "fits": False, "reasons": ["Outside HMB."]},
        amount=1000,
    )
    reviewer, _ = client_for(Role.REVIEWER)
    response = reviewer.post(f"{REQUESTS}/{request.pk}/approve", {}, format="json")
    assert response.status_code == 409
    assert "does not fit" in response.json()["error"]["message"]
    assert AccessRequest.objects.get(pk=request.pk).state == "submitted"


def test_reviewers_approve_once_and_reject_with_a_reason(listing, client_for) -> None:
    dataset, _ = listing()
    researcher, _ = client_for(Role.RESEARCHER)
    other_researcher, _ = client_for(Role.RESEARCHER)  # one open request per researcher
    first = ask(researcher, dataset, FITTING).json()["id"]
    second = ask(other_researcher, dataset, FITTING).json()["id"]
    reviewer, _ = client_for(Role.REVIEWER)
    assert (
        reviewer.post(f"{REQUESTS}/{first}/approve", {}, format="json").json()["state"]
        == "approved"
    )
    # A second decision without the state the caller saw is refused, never repeated.
    again = reviewer.post(f"{REQUESTS}/{first}/approve", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "stale_state"
    assert AuditEntry.objects.filter(action="request.approve").count() == 1
    no_reason = reviewer.post(f"{REQUESTS}/{second}/reject", {"reason": " "}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]["fields"]
    rejected = reviewer.post(
        f"{REQUESTS}/{second}/reject", {"reason": "Not a research use."}, format="json"
    ).json()
    assert rejected["state"] == "rejected" and rejected["decision_reason"] == "Not a research use."


def test_the_researcher_withdraws_before_paying(listing, client_for) -> None:
    dataset, _ = listing()
    researcher, _ = client_for(Role.RESEARCHER)
    request_id = ask(researcher, dataset, FITTING).json()["id"]
    assert researcher.post(f"{REQUESTS}/{request_id}/withdraw").json()["state"] == "withdrawn"
    reviewer, _ = client_for(Role.REVIEWER)
    assert reviewer.post(f"{REQUESTS}/{request_id}/approve", {}, format="json").status_code == 409


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"accept_terms": False}, "accept_terms"),
        ({"statement": "   "}, "statement"),
        ({"purpose_codes": ["DUO:0000099"]}, "purpose_codes"),
    ],
)
def test_bad_requests_are_refused(listing, client_for, extra: dict, field: str) -> None:
    dataset, _ = listing()
    client, _ = client_for(Role.RESEARCHER)
    response = ask(client, dataset, FITTING, **extra)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]


def test_who_sees_and_does_what(listing, client_for) -> None:
    dataset, (donor, _) = listing()
    researcher, _ = client_for(Role.RESEARCHER)
    request_id = ask(researcher, dataset, FITTING).json()["id"]
    other_researcher, _ = client_for(Role.RESEARCHER)
    other_donor, _ = client_for(Role.DONOR)
    reviewer, _ = client_for(Role.REVIEWER)
    admin, _ = client_for(Role.ADMIN)
    detail = f"{REQUESTS}/{request_id}"
    seen = {
        name: client.get(detail).status_code
        for name, client in (
            ("researcher", researcher),
            ("donor", donor),
            ("reviewer", reviewer),
            ("admin", admin),
            ("other researcher", other_researcher),
            ("other donor", other_donor),
        )
    }
    assert seen == {
        "researcher": 200,
        "donor": 200,
        "reviewer": 200,
        "admin": 200,
        "other researcher": 404,
        "other donor": 404,
    }
    assert other_researcher.get(REQUESTS).json()["results"] == []
    assert len(reviewer.get(REQUESTS).json()["results"]) == 1
    assert APIClient().get(detail).status_code == 401
    for client in (researcher, donor, other_donor):
        assert client.post(f"{detail}/approve", {}, format="json").status_code == 403
    assert other_researcher.post(f"{detail}/withdraw").status_code == 404
    assert (
        donor.post(
            REQUESTS,
            {"dataset": dataset, "purpose_codes": FITTING, "statement": "x", "accept_terms": True},
            format="json",
        ).status_code
        == 403
    )


def test_donor_and_researcher_are_notified_in_app_and_by_email(
    listing, client_for, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    dataset, (donor, _) = listing()
    researcher, _ = client_for(Role.RESEARCHER)
    with django_capture_on_commit_callbacks(execute=True):
        request_id = ask(researcher, dataset, FITTING).json()["id"]
    for client in (researcher, donor):
        items = client.get("/api/v1/notifications").json()["results"]
        assert items[0]["request"] == request_id and "waiting for review" in items[0]["message"]
    # One message per recipient: nobody sees the other's address.
    assert sorted(len(mail.to) + len(mail.cc) + len(mail.bcc) for mail in mailoutbox) == [1, 1]
    assert {mail.to[0] for mail in mailoutbox} == {
        AccessRequest.objects.get(pk=request_id).researcher.email,
        AccessRequest.objects.get(pk=request_id).dataset.donor.email,
    }
    reviewer, _ = client_for(Role.REVIEWER)
    with django_capture_on_commit_callbacks(execute=True):
        reviewer.post(f"{REQUESTS}/{request_id}/reject", {"reason": "No."}, format="json")
    assert "rejected" in researcher.get("/api/v1/notifications").json()["results"][0]["message"]
    assert researcher.post("/api/v1/notifications/read").json() == {"marked": 2}
    assert all(n["read_at"] for n in researcher.get("/api/v1/notifications").json()["results"])


def test_an_npuncu_purpose_is_approved_at_once_with_the_matcher_version(
    listing, client_for
) -> None:
    """Issue 14.6's example end to end: committing to NPUNCU meets a consent requiring NCU;
    the decision keeps the version of the matcher that made it."""
    from marketplace.consent import MATCHER_VERSION

    dataset, _ = listing(review="auto")  # HMB + NCU
    client, _ = client_for(Role.RESEARCHER)
    body = ask(client, dataset, ["DUO:0000006", "DUO:0000018"]).json()
    assert body["state"] == "approved", body["duo_match"]
    assert body["duo_match"]["outcome"] == "fits"
    assert body["consent_matcher_version"] == MATCHER_VERSION
    approval = AuditEntry.objects.get(action="request.approve", object_id=body["id"])
    assert approval.data["consent_matcher_version"] == MATCHER_VERSION


def test_a_purpose_that_needs_review_waits_for_the_committee_even_when_auto(
    listing, client_for
) -> None:
    dataset, _ = listing(review="auto", codes=[{"code": "DUO:0000007", "value": "MONDO:0005148"}])
    client, _ = client_for(Role.RESEARCHER)
    asthma = [{"code": "DUO:0000007", "value": "MONDO:0004979"}]  # outside the shipped MONDO
    body = ask(client, dataset, asthma).json()
    assert body["state"] == "submitted" and body["duo_match"]["outcome"] == "needs_review"
    subtype = [{"code": "DUO:0000007", "value": "MONDO:0011027"}]  # NIDDM1 < type 2 diabetes
    another, _ = client_for(Role.RESEARCHER)  # the first one's request is still open
    assert ask(another, dataset, subtype).json()["state"] == "approved"


def test_a_decision_on_a_request_that_moved_on_is_refused_with_who_decided(
    listing, client_for
) -> None:
    dataset, _ = listing()
    researcher, _ = client_for(Role.RESEARCHER)
    request_id = ask(researcher, dataset, FITTING).json()["id"]
    first, first_user = client_for(Role.REVIEWER)
    second, _ = client_for(Role.REVIEWER)
    approved = first.post(
        f"{REQUESTS}/{request_id}/approve",
        {"reason": "Fits.", "expected_state": "submitted"},
        format="json",
    )
    assert approved.status_code == 200
    # The second reviewer saw it submitted and rejects: refused, the approval stands.
    stale = second.post(
        f"{REQUESTS}/{request_id}/reject",
        {"reason": "No.", "expected_state": "submitted"},
        format="json",
    )
    assert stale.status_code == 409
    error = stale.json()["error"]
    assert error["code"] == "stale_state" and "expected_state" in error["fields"]
    assert f"approved by {first_user.username}" in error["message"]
    assert f"/requests/{request_id}/" in error["message"]
    # Without the state it saw, a caller may not overturn the approval either.
    blind = second.post(f"{REQUESTS}/{request_id}/reject", {"reason": "No."}, format="json")
    assert blind.status_code == 409
    assert AccessRequest.objects.get(pk=request_id).state == "approved"
    # A caller that saw it approved and means it may still reject before the voucher.
    meant = second.post(
        f"{REQUESTS}/{request_id}/reject",
        {"reason": "Ethics approval lapsed.", "expected_state": "approved"},
        format="json",
    )
    assert meant.status_code == 200 and meant.json()["state"] == "rejected"


def test_a_payable_request_is_not_rejected_and_the_message_says_who_can_end_it(
    listing, client_for
) -> None:
    dataset, _ = listing()
    researcher, _ = client_for(Role.RESEARCHER)
    request_id = ask(researcher, dataset, FITTING).json()["id"]
    AccessRequest.objects.filter(pk=request_id).update(state="payable")
    reviewer, _ = client_for(Role.REVIEWER)
    refused = reviewer.post(
        f"{REQUESTS}/{request_id}/reject",
        {"reason": "No.", "expected_state": "payable"},
        format="json",
    )
    assert refused.status_code == 409
    message = refused.json()["error"]["message"]
    assert "A awaiting" not in message and "An admin can close it" in message


def test_a_second_open_request_for_the_same_dataset_is_refused(listing, client_for) -> None:
    """Issue 16 §7: back + resubmit (or a double click) makes no second request: 409
    `duplicate_request` with the link to the open one; once it ended, asking again works."""
    dataset, _ = listing()
    researcher, researcher_user = client_for(Role.RESEARCHER)
    first = ask(researcher, dataset, FITTING).json()["id"]
    again = ask(researcher, dataset, FITTING)
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "duplicate_request"
    assert f"/requests/{first}/" in error["message"] and "withdraw it" in error["message"]
    assert AccessRequest.objects.filter(researcher=researcher_user).count() == 1
    other, _ = client_for(Role.RESEARCHER)
    assert ask(other, dataset, FITTING).status_code == 201
    assert researcher.post(f"{REQUESTS}/{first}/withdraw").status_code == 200
    assert ask(researcher, dataset, FITTING).status_code == 201


@pytest.mark.parametrize("state", ["payable", "paid", "delivering", "granted", "settled"])
def test_the_database_holds_one_request_per_researcher_and_dataset_that_leads_to_access(
    listing, client_for, state: str
) -> None:
    """The partial unique index holds even for writes that skip the service."""
    from django.db import IntegrityError, transaction

    dataset, _ = listing()
    _, researcher = client_for(Role.RESEARCHER)

    def make(state: str) -> AccessRequest:
        return AccessRequest.objects.create(
            dataset_id=dataset, researcher=researcher, statement="x", amount=1, state=state
        )

    make(state)
    with pytest.raises(IntegrityError), transaction.atomic():
        make("submitted")
    for ended in ("rejected", "withdrawn", "lapsed", "refunded", "revoked", "expired"):
        make(ended)  # ended requests never stand in the way
    make("refunding")  # a late payment on a closed request is refunded, never refused
