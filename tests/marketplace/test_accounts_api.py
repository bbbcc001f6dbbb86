"""Registration, token login and the profile endpoint (API.md "Accounts and keys")."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from marketplace.models import Role, User
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
ME = "/api/v1/me"


def register(client: APIClient, **overrides: str) -> Any:
    body = {
        "username": "alice",
        "password": "a-long-passphrase-42",
        "email": "a@example.org",
        "role": "researcher",
        **overrides,
    }
    return client.post(REGISTER, body, format="json")


def test_register_creates_account_with_role(api_client: APIClient) -> None:
    response = register(api_client, role="donor")
    assert response.status_code == 201
    assert response.json()["role"] == "donor"
    user = User.objects.get(username="alice")
    assert user.role == Role.DONOR and not user.is_staff
    assert user.check_password("a-long-passphrase-42")


def test_register_refuses_staff_roles(api_client: APIClient) -> None:
    response = register(api_client, role="reviewer")
    assert response.status_code == 400
    assert "role" in response.json()["error"]["fields"]
    assert not User.objects.exists()


def test_register_refuses_weak_password_naming_the_rules(api_client: APIClient) -> None:
    response = register(api_client, password="12345678")
    assert response.status_code == 400
    messages = response.json()["error"]["fields"]["password"]
    assert any("too short" in m for m in messages)
    assert any("numeric" in m for m in messages)


def test_register_refuses_taken_username_case_insensitively(api_client: APIClient) -> None:
    assert register(api_client).status_code == 201
    response = register(api_client, username="ALICE", email="b@example.org")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["username"] == ["That username is taken."]


def test_token_login_returns_token_that_authenticates(api_client: APIClient, make_user) -> None:
    user = make_user(Role.DONOR, username="bob")
    response = api_client.post(TOKEN, {"username": "bob", "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = api_client.get(ME)
    assert me.status_code == 200
    assert me.json()["id"] == str(user.id)
    assert me.json()["role"] == "donor"
    assert set(me.json()) >= {"crypt4gh_public_key", "wallet_address", "username", "role"}


def test_token_login_refuses_wrong_password(api_client: APIClient, make_user) -> None:
    make_user(username="bob")
    response = api_client.post(TOKEN, {"username": "bob", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_token_login_refuses_deactivated_account(api_client: APIClient, make_user) -> None:
    make_user(username="bob", is_active=False)
    response = api_client.post(TOKEN, {"username": "bob", "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 400


@override_settings(AXES_FAILURE_LIMIT=3)
def test_login_is_locked_after_repeated_failures(api_client: APIClient, make_user) -> None:
    make_user(username="bob")
    statuses = [
        api_client.post(
            TOKEN, {"username": "bob", "password": f"wrong{i}"}, format="json"
        ).status_code
        for i in range(3)
    ]
    assert statuses == [400, 400, 429]
    # Even the right password is refused while locked out.
    response = api_client.post(TOKEN, {"username": "bob", "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"


def test_me_requires_authentication(api_client: APIClient) -> None:
    response = api_client.get(ME)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_private_answers_are_not_cached(client_for) -> None:
    client, _ = client_for(Role.RESEARCHER)
    response = client.get(ME)
    assert "no-store" in response["Cache-Control"]
