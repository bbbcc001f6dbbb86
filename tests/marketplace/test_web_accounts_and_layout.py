"""Issue 16 §11 and §12, without a browser: each role lands on its workspace, password
reset by email, staff recovery codes, the Status page in words, and page titles that
hold no markup. (The phone layout and the copy button are browser journey steps.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast
from urllib.parse import unquote

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from marketplace.models import AuditEntry, RecoveryCode, Role, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery 42"


def _user(role: Role, **kwargs: object) -> User:
    user = cast(User, UserFactory(role=role, **kwargs))
    user.set_password(PASSWORD)
    user.save()
    return user


# --- §11: sign-in lands on the role's workspace ------------------------------------------


@pytest.mark.parametrize(
    ("role", "workspace"),
    [
        (Role.DONOR, "/dashboard/"),
        (Role.RESEARCHER, "/requests/"),
        (Role.REVIEWER, "/review/"),
        (Role.ADMIN, "/review/"),
    ],
)
def test_each_role_lands_on_its_workspace_after_signing_in(role: Role, workspace: str) -> None:
    user = _user(role)
    client = Client()
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    location = response["Location"]
    if user.is_staff:  # staff pass the second factor on their way there
        assert location.startswith("/accounts/second-factor/")
        assert f"next={workspace.replace('/', '%2F')}" in location
    else:
        assert location == workspace
    # An explicit `next` still wins.
    other = Client()
    response = other.post(
        "/accounts/login/?next=/datasets/", {"username": user.username, "password": PASSWORD}
    )
    assert "/datasets/" in unquote(response["Location"])


def test_a_new_account_lands_on_its_workspace() -> None:
    response = Client().post(
        "/accounts/register/",
        {
            "username": "new-donor",
            "email": "new-donor@example.org",
            "password": PASSWORD,
            "role": "donor",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/dashboard/"


# --- §11: password reset by email ---------------------------------------------------------


@pytest.fixture
def fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def test_password_reset_by_email_end_to_end(mailoutbox, fresh_throttle) -> None:
    user = _user(Role.RESEARCHER, email="ada@example.org")
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password-reset/"' in page
    form = client.get("/accounts/password-reset/")
    assert form.status_code == 200
    assert "<title>Reset your password · GeneMarket" in form.content.decode()
    sent = client.post("/accounts/password-reset/", {"email": "ADA@example.org"})
    assert sent.status_code == 302 and sent["Location"] == "/accounts/password-reset/sent/"
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["ada@example.org"]
    body = mailoutbox[0].body
    link = re.search(r"(http\S+/accounts/password-reset/\S+/\S+/)", body)
    assert link, body
    assert link.group(1).startswith(settings.SITE_URL)  # never the request's Host header
    path = link.group(1).removeprefix(settings.SITE_URL)
    confirm = client.get(path, follow=True)
    assert "Choose a new password" in confirm.content.decode()
    done = client.post(
        confirm.redirect_chain[-1][0],
        {"new_password1": "a brand new passphrase 7", "new_password2": "a brand new passphrase 7"},
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/password-reset/done/"
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase 7")
    assert "no longer works" in client.get(path, follow=True).content.decode()  # once only


def test_password_reset_does_not_tell_who_has_an_account(mailoutbox, fresh_throttle) -> None:
    _user(Role.DONOR, email="known@example.org")
    known = Client().post("/accounts/password-reset/", {"email": "known@example.org"})
    unknown = Client().post("/accounts/password-reset/", {"email": "nobody@example.org"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert [m.to for m in mailoutbox] == [["known@example.org"]]


def test_password_reset_is_throttled(mailoutbox, fresh_throttle, settings) -> None:
    settings.THROTTLE_PASSWORD_RESET = "3/hour"
    _user(Role.DONOR, email="target@example.org")
    client = Client()
    answers = [
        client.post("/accounts/password-reset/", {"email": "target@example.org"}).status_code
        for _ in range(5)
    ]
    assert answers == [302, 302, 302, 429, 429]
    assert len(mailoutbox) == 3
    # The same for an address nobody has: the limit cannot tell them apart.
    other = [
        Client().post("/accounts/password-reset/", {"email": "ghost@example.org"}).status_code
        for _ in range(4)
    ]
    assert other[-1] == 429
    refused = client.post("/accounts/password-reset/", {"email": "target@example.org"})
    assert "Too many reset requests" in refused.content.decode()


# --- §11: staff recovery codes ------------------------------------------------------------


def _signed_in_staff() -> tuple[User, Client, TOTPDevice]:
    admin = _user(Role.ADMIN)
    device = TOTPDevice.objects.create(user=admin, name="app", confirmed=True)
    client = Client()
    client.post("/accounts/login/", {"username": admin.username, "password": PASSWORD})
    code = TOTP(device.bin_key).token()
    client.post("/accounts/second-factor/", {"token": f"{code:06d}"})
    return admin, client, device


def test_staff_make_recovery_codes_shown_once_and_stored_hashed() -> None:
    admin, client, _ = _signed_in_staff()
    assert 'href="/accounts/recovery-codes/"' in client.get("/profile/").content.decode()
    page = client.get("/accounts/recovery-codes/").content.decode()
    assert "0</strong> unused codes" in page
    made = client.post("/accounts/recovery-codes/")
    codes = re.findall(r"<code>([a-z2-7]{4}(?:-[a-z2-7]{4}){3})</code>", made.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert made["Cache-Control"].startswith("max-age=0") or "no-cache" in made["Cache-Control"]
    stored = list(
        RecoveryCode.objects.filter(device__user=admin).values_list("code_sha256", flat=True)
    )
    assert len(stored) == 10 and not set(codes) & set(stored)
    again = client.get("/accounts/recovery-codes/").content.decode()
    assert not any(code in again for code in codes) and "10</strong> unused codes" in again
    made_entries = AuditEntry.objects.filter(action="account.recovery_codes_make")
    assert [e.actor_id for e in made_entries] == [str(admin.pk)]


def test_a_recovery_code_passes_the_second_factor_once_instead_of_the_totp() -> None:
    admin, client, _ = _signed_in_staff()
    codes = re.findall(
        r"<code>([a-z2-7-]{19})</code>", client.post("/accounts/recovery-codes/").content.decode()
    )
    phone_lost = Client()
    phone_lost.post("/accounts/login/", {"username": admin.username, "password": PASSWORD})
    assert phone_lost.get("/review/").status_code == 302  # the second factor first
    page = phone_lost.get("/accounts/second-factor/?next=/review/").content.decode()
    assert "Use a recovery code" in page
    wrong = phone_lost.post(
        "/accounts/second-factor/", {"recovery_code": "aaaa-bbbb-cccc-dddd", "next": "/review/"}
    )
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    # django-otp's throttle slows a guesser after the wrong code; let this test go on.
    admin.recovery_code_devices.update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )
    passed = phone_lost.post(
        "/accounts/second-factor/", {"recovery_code": codes[0].upper(), "next": "/review/"}
    )
    assert passed.status_code == 302 and passed["Location"] == "/review/"
    assert phone_lost.get("/review/").status_code == 200
    entry = AuditEntry.objects.get(action="account.recovery_code_use")
    assert entry.actor_id == str(admin.pk) and entry.data == {"left": 9}

    again = Client()
    again.post("/accounts/login/", {"username": admin.username, "password": PASSWORD})
    reused = again.post("/accounts/second-factor/", {"recovery_code": codes[0], "next": "/review/"})
    assert reused.status_code == 400  # used once, never again
    assert again.get("/review/").status_code == 302


def test_only_staff_have_recovery_codes() -> None:
    donor = _user(Role.DONOR)
    client = Client()
    client.force_login(donor)
    assert client.post("/accounts/recovery-codes/").status_code == 403
    assert not RecoveryCode.objects.exists()


# --- §11: the footer's Status link is a page ------------------------------------------------


def test_the_status_page_says_in_words_what_health_checks(monkeypatch) -> None:
    from core import health

    def chain_down() -> None:
        raise ConnectionError("refused")

    monkeypatch.setattr(
        health,
        "CHECKS",
        {
            "database": lambda: None,
            "broker": lambda: None,
            "storage": lambda: None,
            "chain": chain_down,
        },
    )
    client = Client()
    home = client.get("/").content.decode()
    assert 'href="/status/">Status</a>' in home
    page = client.get("/status/")
    assert page["Content-Type"].startswith("text/html")
    text = re.sub(r"\s+", " ", page.content.decode())
    assert "Some parts are not working." in text
    assert "Database</strong> (accounts, listings, requests and the audit log): working" in text
    assert (
        "Chain node</strong> (payments, escrow and anchoring): not working — "
        "the chain node does not answer" in text
    )
    assert "Workers</strong>" in text and "not seen yet" in text
    monkeypatch.setitem(health.CHECKS, "chain", lambda: None)
    assert "Everything is working." in client.get("/status/").content.decode()


# --- §12: page titles are text ------------------------------------------------------------

TEMPLATES = [
    Path(settings.BASE_DIR) / "marketplace" / "templates",
    Path(settings.BASE_DIR) / "core" / "templates",
]
TITLE_BLOCK = re.compile(r"{%\s*block title\s*%}(.*?){%\s*endblock", re.S)


def test_no_template_puts_markup_in_the_title() -> None:
    """Every page's title block is one line of text: a block left open runs into the
    page's HTML, which the browser then shows as its title (the home page did)."""
    found = 0
    for folder in TEMPLATES:
        for template in folder.rglob("*.html"):
            for title in TITLE_BLOCK.findall(template.read_text()):
                found += 1
                assert "<" not in title and "\n" not in title, (template, title[:80])
    assert found >= 20


def test_the_home_page_title_is_plain_text() -> None:
    page = Client().get("/").content.decode()
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None
    assert title.group(1) == "Genomic data, shared on the donor's terms · GeneMarket"
