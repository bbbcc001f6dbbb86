"""The web UI without a browser: every page for every kind of visitor, and each form doing
what it says (and saying in place what is wrong)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from genomics import c4gh
from marketplace.models import AccessRequest, Dataset, DatasetTier, Role, User
from marketplace.services.blocklist import researcher_block
from marketplace.services.datasets import dataset_create
from tests.factories import UserFactory, ready_file
from tests.support.routes import web_routes
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db

VISITORS = (
    "anonymous",
    "donor",
    "other_donor",
    "researcher",
    "other_researcher",
    "reviewer",
    "admin",
)


@pytest.fixture
def world() -> dict[str, Any]:
    roles = {
        "donor": Role.DONOR,
        "other_donor": Role.DONOR,
        "researcher": Role.RESEARCHER,
        "other_researcher": Role.RESEARCHER,
        "reviewer": Role.REVIEWER,
        "admin": Role.ADMIN,
    }
    users = {
        name: cast(User, UserFactory(role=role, payout_wallet=role == Role.DONOR))
        for name, role in roles.items()
    }
    stored = ready_file(users["donor"])
    dataset = dataset_create(
        donor=users["donor"],
        title="Cardiomyopathy trio exomes",
        description="Three exomes from one family.",
        files=[stored.pk],
        duo_codes=["DUO:0000006", "DUO:0000021"],
        price=str(25 * 10**18),
        access_days=90,
        review="committee",
    )
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=users["researcher"],
        purpose_codes=[{"code": "DUO:0000006", "value": ""}],
        statement="Heart disease variants.",
        amount=dataset.price,
        duo_match={"fits": True, "reasons": [], "committee_checks": ["Ethics approval"]},
    )
    tier = DatasetTier.objects.create(
        dataset=dataset,
        name="BRCA panel",
        price=5,
        source=DatasetTier.Source.GENES,
        genes=["BRCA1"],
        regions=[["chr17", 43044294, 43170245]],
        regions_sha256="00" * 32,
        state=DatasetTier.State.READY,
    )
    return {"users": users, "file": stored, "dataset": dataset, "request": request, "tier": tier}


def client_for(world: dict[str, Any], visitor: str) -> Client:
    return Client() if visitor == "anonymous" else logged_in(world["users"][visitor])


LOGIN = "/accounts/login/"
STAFF_ONLY: dict[str, int | str] = {
    "anonymous": LOGIN,
    "donor": 403,
    "other_donor": 403,
    "researcher": 403,
    "other_researcher": 403,
}
# Pages for signing in send a visitor who already is to the home page.
SIGNED_IN_SENT_HOME: dict[str, int | str] = {v: "/" for v in VISITORS if v != "anonymous"}
DONOR_ONLY: dict[str, int | str] = {
    "anonymous": LOGIN,
    "researcher": 403,
    "other_researcher": 403,
    "reviewer": 403,
    "admin": 403,
}


def blocked(world: dict[str, Any]) -> None:
    """The other researcher is blocked from the donor's dataset."""
    world["block"] = researcher_block(
        actor=world["users"]["donor"],
        dataset_id=world["dataset"].pk,
        researcher_id=world["users"]["other_researcher"].pk,
        reason="Shared the files.",
    ).pk


ADMIN_ONLY: dict[str, int | str] = {**STAFF_ONLY, "reviewer": 403}


def returned(world: dict[str, Any]) -> None:
    AccessRequest.objects.filter(pk=world["request"].pk).update(
        state=AccessRequest.State.RETURNED, decision_reason="Name the comparison cohort."
    )


def granted(world: dict[str, Any]) -> None:
    AccessRequest.objects.filter(pk=world["request"].pk).update(state=AccessRequest.State.GRANTED)


@dataclass(frozen=True)
class Page:
    """One call of one web route, named as the URL configuration names it. `expect` gives
    the status by visitor (200 for a visitor not named); a string is a redirect to a path
    starting with it. `path` takes {dataset} and {request}, owned by `donor` and
    `researcher`, so `other_donor` and `other_researcher` visit someone else's object."""

    path: str
    expect: dict[str, int | str] = field(default_factory=dict)
    method: str = "GET"
    data: dict[str, str] = field(default_factory=dict)
    setup: Callable[[dict[str, Any]], None] | None = None


PAGES: dict[str, Page] = {
    "home": Page("/"),
    "login": Page("/accounts/login/", SIGNED_IN_SENT_HOME),
    "logout": Page("/accounts/logout/", dict.fromkeys(VISITORS, "/"), method="POST"),
    "register": Page("/accounts/register/", SIGNED_IN_SENT_HOME),
    # Only staff who have not passed it yet take the second factor (its own tests below);
    # staff who passed it and everyone else are sent on.
    "second-factor": Page("/accounts/second-factor/", {**SIGNED_IN_SENT_HOME, "anonymous": LOGIN}),
    "password-reset": Page("/accounts/password-reset/"),
    "password-reset-done": Page("/accounts/password-reset/sent/"),
    # A made-up link: the page says it no longer works (200), to anyone.
    "password-reset-confirm": Page("/accounts/password-reset/{uidb64}/{token}/"),
    "password-reset-complete": Page("/accounts/password-reset/done/"),
    "recovery-codes": Page("/accounts/recovery-codes/", STAFF_ONLY),
    "status": Page("/status/"),
    "dataset-delist": Page(
        "/datasets/{dataset}/delist",
        {**STAFF_ONLY, "reviewer": 403, "admin": "/datasets/"},
        method="POST",
        data={"reason": "Duplicate listing."},
    ),
    "catalogue": Page("/datasets/"),
    "dataset": Page("/datasets/{dataset}/"),
    "howto-keys": Page("/how-to/keys/"),
    "howto-decrypt": Page("/how-to/decrypt/"),
    "dashboard": Page("/dashboard/", DONOR_ONLY),
    "files": Page("/files/", DONOR_ONLY),
    "files-table": Page("/files/table", DONOR_ONLY),
    # The world's file is listed: its donor is sent back to the page with a message.
    "file-delete": Page(
        "/files/{file}/delete",
        {**DONOR_ONLY, "donor": "/files/", "other_donor": "/files/"},
        method="POST",
    ),
    "upload-cancel": Page(
        "/files/{file}/cancel",
        {**DONOR_ONLY, "donor": "/files/", "other_donor": "/files/"},
        method="POST",
    ),
    # Storing a VCF bgzipped: the donor's is queued; another donor's is not found (message).
    "file-recompress": Page(
        "/files/{file}/recompress",
        {**DONOR_ONLY, "donor": "/files/", "other_donor": "/files/"},
        method="POST",
    ),
    "listing-create": Page("/datasets/new/", DONOR_ONLY),
    "listing-edit": Page("/datasets/{dataset}/edit/", {**DONOR_ONLY, "other_donor": 404}),
    "listing-withdraw": Page(
        "/datasets/{dataset}/withdraw/",
        {
            "anonymous": LOGIN,
            "other_donor": 404,
            "researcher": 403,
            "other_researcher": 403,
            "reviewer": 403,
        },
    ),
    "tier-create": Page("/datasets/{dataset}/tiers/new/", {**DONOR_ONLY, "other_donor": 404}),
    "dataset_tier": Page("/datasets/{dataset}/tiers/{tier}/"),
    "request-create": Page(
        "/datasets/{dataset}/request/",
        {"anonymous": LOGIN, "donor": 403, "other_donor": 403, "reviewer": 403, "admin": 403},
    ),
    "request-fit": Page(
        "/datasets/{dataset}/request/fit",
        {"anonymous": LOGIN, "donor": 403, "other_donor": 403, "reviewer": 403, "admin": 403},
    ),
    "profile": Page("/profile/", {"anonymous": LOGIN}),
    "inbox": Page("/inbox/", {"anonymous": LOGIN}),
    "inbox-read": Page(
        "/inbox/read",
        {"anonymous": LOGIN, **{v: "/inbox/" for v in VISITORS if v != "anonymous"}},
        method="POST",
    ),
    "requests": Page("/requests/", {"anonymous": LOGIN, "reviewer": 403, "admin": 403}),
    "request": Page(
        "/requests/{request}/",
        {"anonymous": LOGIN, "other_donor": 404, "other_researcher": 404},
    ),
    "request-status": Page(
        "/requests/{request}/status",
        {"anonymous": LOGIN, "other_donor": 404, "other_researcher": 404},
    ),
    "request-approve": Page(
        "/requests/{request}/approve",
        {**STAFF_ONLY, "reviewer": "/requests/", "admin": "/requests/"},
        method="POST",
        data={"reason": "Fits."},
    ),
    "request-reject": Page(
        "/requests/{request}/reject",
        {**STAFF_ONLY, "reviewer": "/requests/", "admin": "/requests/"},
        method="POST",
        data={"reason": "No ethics approval."},
    ),
    "request-close": Page(
        "/requests/{request}/close",
        {**STAFF_ONLY, "reviewer": 403, "admin": "/requests/"},
        method="POST",
        data={"reason": "The donor never linked a wallet."},
    ),
    "request-withdraw": Page(
        "/requests/{request}/withdraw",
        {
            "anonymous": LOGIN,
            "donor": 403,
            "other_donor": 403,
            "researcher": "/requests/",
            "other_researcher": 404,
            "reviewer": 403,
            "admin": 403,
        },
        method="POST",
    ),
    "request-revoke": Page(
        "/requests/{request}/revoke",
        {
            "anonymous": LOGIN,
            "donor": "/requests/",
            "other_donor": 404,
            "researcher": 403,
            "other_researcher": 403,
            "reviewer": 403,
            "admin": "/requests/",
        },
        method="POST",
        data={"reason": "Misuse."},
        setup=granted,
    ),
    "dataset-agreement": Page("/datasets/{dataset}/agreement/", {**DONOR_ONLY, "other_donor": 404}),
    "dataset-blocklist": Page(
        "/datasets/{dataset}/blocks/",
        {
            "anonymous": LOGIN,
            "other_donor": 404,
            "researcher": 403,
            "other_researcher": 403,
            "reviewer": 403,
        },
    ),
    "dataset-block-lift": Page(
        "/datasets/{dataset}/blocks/{block}/lift",
        {
            "anonymous": LOGIN,
            "donor": "/datasets/",
            "other_donor": 404,
            "researcher": 403,
            "other_researcher": 403,
            "reviewer": 403,
            "admin": "/datasets/",
        },
        method="POST",
        setup=blocked,
    ),
    "request-renew": Page(
        "/requests/{request}/renew",
        {
            "anonymous": LOGIN,
            "donor": 403,
            "other_donor": 403,
            # The world's request was stored without the fit check, and its purpose (HMB
            # without the IRB the consent asks for) cannot fit: the renewal is refused on
            # the page, as a new request would be (test_renewals covers one that is sent).
            "researcher": 400,
            "other_researcher": 404,
            "reviewer": 403,
            "admin": 403,
        },
        method="POST",
        setup=granted,
    ),
    "request-attach": Page(
        "/requests/{request}/attachments",
        {
            "anonymous": LOGIN,
            "donor": 403,
            "other_donor": 403,
            "researcher": 400,  # the form without a file: said on the page
            "other_researcher": 404,
            "reviewer": 403,
            "admin": 403,
        },
        method="POST",
    ),
    "request-attachment": Page(
        "/requests/{request}/attachments/{attachment}",
        {
            "anonymous": LOGIN,
            "donor": 404,
            "other_donor": 404,
            "researcher": 404,
            "other_researcher": 404,
            "reviewer": 404,  # no such attachment on this request
            "admin": 404,
        },
    ),
    "access-history": Page("/my-data/", DONOR_ONLY),
    "profile-identity": Page(
        "/profile/identity",
        {"anonymous": LOGIN, **{v: "/profile/" for v in VISITORS if v != "anonymous"}},
        method="POST",
        data={"institution": "Example Institute"},
    ),
    "erase": Page("/my-data/erase/", DONOR_ONLY),
    # Committees (issue 19): the request's dataset is the platform committee's, on which
    # the reviewer and the admin sit (one member decides there).
    "request-vote": Page(
        "/requests/{request}/vote",
        {**STAFF_ONLY, "reviewer": "/requests/", "admin": "/requests/"},
        method="POST",
        data={"vote": "approve", "comment": "Fits."},
    ),
    "request-return": Page(
        "/requests/{request}/return",
        {**STAFF_ONLY, "reviewer": "/requests/", "admin": "/requests/"},
        method="POST",
        data={"reason": "Name the cohort you will compare with."},
    ),
    "request-message": Page(
        "/requests/{request}/messages",
        {
            "anonymous": LOGIN,
            "donor": 403,  # sees the request, is not on its committee
            "other_donor": 404,
            "researcher": "/requests/",
            "other_researcher": 404,
            "reviewer": "/requests/",
            "admin": "/requests/",
        },
        method="POST",
        data={"body": "Which ethics board approved it?"},
    ),
    "request-edit": Page(
        "/requests/{request}/edit/",
        {
            "anonymous": LOGIN,
            "donor": 403,
            "other_donor": 403,
            "other_researcher": 404,
            "reviewer": 403,
            "admin": 403,
        },
        setup=returned,
    ),
    "dacs": Page("/committees/", ADMIN_ONLY),
    "dac": Page("/committees/{dac}/", ADMIN_ONLY),
    "dac-member-add": Page(
        "/committees/{dac}/members",
        {**ADMIN_ONLY, "admin": "/committees/"},
        method="POST",
        data={"username": "nobody-here", "role": "member"},
    ),
    "dac-member-remove": Page(
        "/committees/{dac}/members/{user}/remove",
        {**ADMIN_ONLY, "admin": "/committees/"},
        method="POST",
    ),
    # The catalogue's "contains variant" box (htmx), open to everyone like the catalogue.
    "variant-search": Page("/discovery/variant-search"),
    "review": Page("/review/", STAFF_ONLY),
    "audit": Page("/audit/", STAFF_ONLY),
    "chain": Page("/chain/", STAFF_ONLY),
}


def test_every_web_route_has_a_page() -> None:
    """The web URL configuration decides what the table must hold: a new page without a
    row (or a row for a page that no longer exists) fails here."""
    routes = web_routes()
    assert sorted(set(routes) - set(PAGES)) == [], "web routes without a row"
    assert sorted(set(PAGES) - set(routes)) == [], "rows for routes nobody serves"
    for name, page in PAGES.items():
        assert (
            page.path.format(
                dataset="{dataset_id}",
                request="{request_id}",
                block="{block_id}",
                attachment="{attachment_id}",
                file="{file_id}",
                uidb64="{uidb64}",
                token="{token}",
                dac="{dac_id}",
                user="{user_id}",
                tier="{tier_id}",
            )
            == routes[name].path
        ), name


@pytest.mark.parametrize("visitor", VISITORS)
@pytest.mark.parametrize("name", PAGES)
def test_page_access(world, visitor: str, name: str) -> None:
    page = PAGES[name]
    if page.setup is not None:
        page.setup(world)
    url = page.path.format(
        dataset=world["dataset"].pk,
        request=world["request"].pk,
        block=world.get("block"),
        attachment=world.get("attachment", "00000000-0000-0000-0000-000000000000"),
        file=world["file"].pk,
        uidb64="MQ",
        token="x-y",
        dac=world["dataset"].dac_id,
        user=world["users"]["reviewer"].pk,
        tier=world["tier"].pk,
    )
    client = client_for(world, visitor)
    response = client.post(url, page.data) if page.method == "POST" else client.get(url)
    expected = page.expect.get(visitor, 200)
    if isinstance(expected, str):
        assert response.status_code == 302, (name, visitor, response.status_code)
        assert response["Location"].startswith(expected), (name, visitor, response["Location"])
    else:
        assert response.status_code == expected, (name, visitor, response.status_code)


def test_the_catalogue_searches_and_filters_without_javascript(world) -> None:
    # The consent (HMB + IRB) fits a purpose that commits to ethics approval.
    page = Client().get(
        "/datasets/", {"q": "cardiomyopathy", "duo": "DUO:0000006", "commit": "DUO:0000021"}
    )
    html = page.content.decode()
    assert "Cardiomyopathy trio exomes" in html and "25 GENE" in html
    assert "HMB: health or medical or biomedical research" in html
    none = Client().get("/datasets/", {"q": "glioma"}).content.decode()
    assert "No dataset matches" in none
    bad = Client().get("/datasets/", {"max": "cheap"}).content.decode()
    assert "Enter the most you would pay" in bad


def test_htmx_gets_only_the_results(world) -> None:
    partial = Client().get(
        "/datasets/", {"q": "exomes"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    html = partial.content.decode()
    assert html.lstrip().startswith('<section id="results"') and "<html" not in html


def test_the_dataset_page_shows_consent_in_words_price_and_provenance(world) -> None:
    html = Client().get(f"/datasets/{world['dataset'].pk}/").content.decode()
    assert "ethics approval required" in html and "25 <span>GENE</span>" in html
    assert world["dataset"].record_hash in html and "not yet" in html
    assert "sample" not in world["dataset"].metadata["files"][0]  # never sample ids


def test_a_donor_lists_edits_and_withdraws(world) -> None:
    donor = world["users"]["donor"]
    client = logged_in(donor)
    form = {
        "title": "Diabetes panel",
        "description": "",
        "file_ids": [str(world["file"].pk)],
        "permission": "DUO:0000007",
        "disease": "MONDO:0005148",
        "modifiers": ["DUO:0000046"],
        "price": "1.5",
        "access_days": "30",
        "review": "auto",
    }
    created = client.post("/datasets/new/", form)
    assert created.status_code == 302
    dataset = Dataset.objects.get(title="Diabetes panel")
    assert dataset.price == 15 * 10**17
    assert {"code": "DUO:0000007", "value": "MONDO:0005148"} in dataset.duo_codes
    missing = client.post("/datasets/new/", {**form, "disease": ""})
    assert missing.status_code == 400 and "needs a value" in missing.content.decode()
    edited = client.post(f"/datasets/{dataset.pk}/edit/", {**form, "price": "2"})
    assert edited.status_code == 302
    dataset.refresh_from_db()
    assert dataset.price == 2 * 10**18
    confirm = client.get(f"/datasets/{dataset.pk}/withdraw/").content.decode()
    assert "This cannot be undone" in confirm
    assert client.post(f"/datasets/{dataset.pk}/withdraw/").status_code == 302
    dataset.refresh_from_db()
    assert dataset.state == "withdrawn"


def test_a_researcher_requests_with_a_purpose_and_sees_why_it_does_not_fit(world) -> None:
    client = logged_in(world["users"]["other_researcher"])
    url = f"/datasets/{world['dataset'].pk}/request/"
    refused = client.post(url, {"permission": "DUO:0000006", "statement": "x"})
    assert refused.status_code == 400 and "This field is required" in refused.content.decode()
    sent = client.post(
        url,
        {
            "permission": "DUO:0000006",
            "modifiers": ["DUO:0000021"],
            "statement": "Heart disease variants.",
            "accept_terms": "on",
        },
    )
    assert sent.status_code == 302
    made = AccessRequest.objects.get(researcher=world["users"]["other_researcher"])
    assert made.state == "submitted" and made.duo_match["fits"]
    page = client.get(sent["Location"]).content.decode()
    assert "The purpose fits the donor" in page and "Withdraw the request" in page


def test_a_reviewer_must_give_a_reason_and_then_decides(world) -> None:
    client = logged_in(world["users"]["reviewer"])
    request = world["request"]
    queue = client.get("/review/").content.decode()
    assert "Cardiomyopathy trio exomes" in queue and "fits" in queue
    without = client.post(f"/requests/{request.pk}/reject", {"reason": ""})
    assert without.status_code == 400 and "This field is required" in without.content.decode()
    rejected = client.post(f"/requests/{request.pk}/reject", {"reason": "No ethics approval."})
    assert rejected.status_code == 302
    request.refresh_from_db()
    assert request.state == "rejected" and request.decision_reason == "No ethics approval."


def test_a_stale_tab_cannot_overturn_a_decision(world) -> None:
    """Approve in one tab, reject in an older one: refused with who decided, 409."""
    request = world["request"]
    older_tab = logged_in(world["users"]["admin"])
    page = older_tab.get(f"/requests/{request.pk}/").content.decode()
    assert 'name="expected_state" value="submitted"' in page
    reviewer = logged_in(world["users"]["reviewer"])
    approved = reviewer.post(
        f"/requests/{request.pk}/approve", {"reason": "Fits.", "expected_state": "submitted"}
    )
    assert approved.status_code == 302
    stale = older_tab.post(
        f"/requests/{request.pk}/reject", {"reason": "No.", "expected_state": "submitted"}
    )
    body = stale.content.decode()
    assert stale.status_code == 409
    assert f"approved by {world['users']['reviewer'].username}" in body
    assert f'href="/requests/{request.pk}/"' in body
    request.refresh_from_db()
    assert request.state == "approved"


def test_the_profile_takes_a_key_file_or_text_and_explains_a_bad_one(world, tmp_path) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    researcher = world["users"]["other_researcher"]
    client = logged_in(researcher)
    _, public = c4gh.generate_keypair()
    import base64

    pub_text = (
        "-----BEGIN CRYPT4GH PUBLIC KEY-----\n"
        + base64.b64encode(public).decode()
        + "\n-----END CRYPT4GH PUBLIC KEY-----\n"
    )
    saved = client.post("/profile/", {"key_file": SimpleUploadedFile("me.pub", pub_text.encode())})
    assert saved.status_code == 302
    researcher.refresh_from_db()
    assert bytes(researcher.crypt4gh_public_key) == public
    bad = client.post("/profile/", {"public_key": "not a key"})
    assert bad.status_code == 400 and 'class="field-error"' in bad.content.decode()


def test_staff_set_up_totp_and_pass_it(world) -> None:
    reviewer = world["users"]["reviewer"]
    client = logged_in(reviewer, second_factor=False)
    setup = client.get("/accounts/second-factor/?next=/review/")
    html = setup.content.decode()
    assert "<svg" in html and "data-totp-secret" in html
    device = TOTPDevice.objects.get(user=reviewer, confirmed=False)
    wrong = client.post("/accounts/second-factor/", {"token": "000000", "next": "/review/"})
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    slowed = client.post("/accounts/second-factor/", {"token": "000000", "next": "/review/"})
    assert "Too many wrong codes" in slowed.content.decode()
    device.refresh_from_db()
    device.throttle_reset()  # as the wait would
    code = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits).token()
    passed = client.post("/accounts/second-factor/", {"token": f"{code:06d}", "next": "/review/"})
    assert passed.status_code == 302 and passed["Location"] == "/review/"
    assert client.get("/review/").status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_logging_in_as_staff_leads_to_the_second_factor(world) -> None:
    from tests.factories import TEST_PASSWORD

    reviewer = world["users"]["reviewer"]
    response = Client().post(
        "/accounts/login/?next=/review/",
        {"username": reviewer.username, "password": TEST_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/second-factor/?next=")


def test_an_open_redirect_is_refused_after_the_second_factor(world) -> None:
    reviewer = world["users"]["reviewer"]
    client = logged_in(reviewer, second_factor=False)
    client.get("/accounts/second-factor/")
    device = TOTPDevice.objects.get(user=reviewer)
    code = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits).token()
    passed = client.post(
        "/accounts/second-factor/", {"token": f"{code:06d}", "next": "https://evil.example/"}
    )
    assert passed["Location"] == "/"


def test_the_live_status_asks_for_a_reload_when_the_state_moved_on(world) -> None:
    client = logged_in(world["users"]["researcher"])
    url = f"/requests/{world['request'].pk}/status"
    same = client.get(url, {"shown": "submitted"})
    assert same.status_code == 200 and "HX-Refresh" not in same
    AccessRequest.objects.filter(pk=world["request"].pk).update(state="approved")
    moved = client.get(url, {"shown": "submitted"})
    assert moved["HX-Refresh"] == "true"
    assert 'hx-get="/requests/' in moved.content.decode()  # still polling while approved
