"""Session login, logout and registration pages of the web UI."""

from __future__ import annotations

import pytest
from django.test import Client

from marketplace.models import Role, User
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def test_home_page_renders_with_htmx_from_our_static_files(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/vendor/htmx-2.0.11.min.js" in html
    assert "<script>" not in html  # no inline script (CSP-ready)
    assert client.get("/static/vendor/htmx-2.0.11.min.js").status_code == 200


def test_login_page_logs_in_and_rotates_session(client: Client, make_user) -> None:
    make_user(Role.DONOR, username="dora")
    client.get("/accounts/login/")
    before = client.cookies.get("sessionid")
    response = client.post("/accounts/login/", {"username": "dora", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert client.cookies["sessionid"].value != (before.value if before else None)
    page = client.get("/").content.decode()
    assert "dora" in page and "Donor" in page


def test_login_error_is_shown_in_place(client: Client, make_user) -> None:
    make_user(username="dora")
    response = client.post("/accounts/login/", {"username": "dora", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_logout_needs_post_and_ends_the_session(client: Client, make_user) -> None:
    client.force_login(make_user())
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_register_page_creates_account_and_logs_in(client: Client) -> None:
    response = client.post(
        "/accounts/register/",
        {
            "username": "rita",
            "email": "rita@example.org",
            "password": "a-long-passphrase-42",
            "role": "researcher",
        },
    )
    assert response.status_code == 302
    assert User.objects.get(username="rita").role == Role.RESEARCHER
    assert client.session.get("_auth_user_id")


def test_register_page_shows_password_rules_in_place(client: Client) -> None:
    response = client.post(
        "/accounts/register/",
        {
            "username": "rita",
            "email": "rita@example.org",
            "password": "123",
            "role": "donor",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "too short" in html and 'role="alert"' in html
    assert not User.objects.exists()


def test_unknown_page_is_a_friendly_404(client: Client) -> None:
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "There is nothing at this address" in response.content.decode()
