"""Sign-In with Ethereum wallet linking (EIP-4361): only a fresh, single-use challenge for
this site, signed by the address it names, links that address, to one account at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from eth_account import Account
from eth_account.messages import encode_defunct
from rest_framework.test import APIClient

from ledger.models import WalletChallenge, WalletLink
from marketplace.models import Role

pytestmark = pytest.mark.django_db

CHALLENGE = "/api/v1/me/wallet/challenge"
LINK = "/api/v1/me/wallet"


@pytest.fixture(autouse=True)
def _chain_id(settings, session_anvil) -> None:
    settings.CHAIN_ID = 31337
    # A signature that no key of the address made may still be a contract wallet's
    # (EIP-1271): the service asks the chain whether the address holds code.
    settings.CHAIN_RPC_URL = session_anvil.url


def sign(message: str, account) -> str:
    return "0x" + account.sign_message(encode_defunct(text=message)).signature.hex().removeprefix(
        "0x"
    )


def challenge(client: APIClient, address: str, **extra) -> str:
    response = client.post(CHALLENGE, {"address": address}, format="json", **extra)
    assert response.status_code == 201, response.json()
    return response.json()["message"]


def test_signed_challenge_links_the_wallet(client_for) -> None:
    client, _ = client_for(Role.RESEARCHER)
    account = Account.create()
    message = challenge(client, account.address.lower())
    assert "testserver wants you to sign in with your Ethereum account" in message
    assert account.address in message and "Chain ID: 31337" in message
    response = client.post(
        LINK, {"message": message, "signature": sign(message, account)}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["wallet_address"] == account.address
    assert client.get("/api/v1/me").json()["wallet_address"] == account.address


def test_a_nonce_is_single_use(client_for) -> None:
    client, _ = client_for(Role.RESEARCHER)
    account = Account.create()
    message = challenge(client, account.address)
    body = {"message": message, "signature": sign(message, account)}
    assert client.post(LINK, body, format="json").status_code == 200
    again = client.post(LINK, body, format="json")
    assert again.status_code == 400
    assert "already used" in again.json()["error"]["message"]


def test_an_expired_challenge_is_refused(client_for) -> None:
    client, _ = client_for(Role.RESEARCHER)
    account = Account.create()
    message = challenge(client, account.address)
    WalletChallenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(
        LINK, {"message": message, "signature": sign(message, account)}, format="json"
    )
    assert response.status_code == 400
    assert "expired" in response.json()["error"]["message"]
    assert not WalletLink.objects.exists()


def test_a_message_for_another_domain_is_refused(client_for) -> None:
    client, _ = client_for(Role.RESEARCHER)
    account = Account.create()
    message = challenge(client, account.address, HTTP_HOST="localhost")
    response = client.post(
        LINK, {"message": message, "signature": sign(message, account)}, format="json"
    )
    assert response.status_code == 400
    assert "not for 'testserver'" in response.json()["error"]["message"]


def test_a_forged_signature_is_refused_and_burns_the_nonce(client_for) -> None:
    client, _ = client_for(Role.RESEARCHER)
    victim, attacker = Account.create(), Account.create()
    message = challenge(client, victim.address)
    forged = client.post(
        LINK, {"message": message, "signature": sign(message, attacker)}, format="json"
    )
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "wallet_verification_failed"
    real = client.post(
        LINK, {"message": message, "signature": sign(message, victim)}, format="json"
    )
    assert real.status_code == 400  # the first attempt spent the nonce
    assert not WalletLink.objects.exists()


def test_a_tampered_message_is_refused(client_for) -> None:
    client, _ = client_for(Role.RESEARCHER)
    account, other = Account.create(), Account.create()
    message = challenge(client, account.address)
    tampered = message.replace(account.address, other.address)
    response = client.post(
        LINK, {"message": tampered, "signature": sign(tampered, other)}, format="json"
    )
    assert response.status_code == 400
    assert not WalletLink.objects.exists()


def test_another_users_nonce_is_unknown(client_for) -> None:
    alice, _ = client_for(Role.RESEARCHER)
    mallory, _ = client_for(Role.RESEARCHER)
    account = Account.create()
    message = challenge(alice, account.address)
    response = mallory.post(
        LINK, {"message": message, "signature": sign(message, account)}, format="json"
    )
    assert response.status_code == 400
    assert "Unknown nonce" in response.json()["error"]["message"]


def test_an_address_links_to_one_account_at_a_time(client_for) -> None:
    alice, _ = client_for(Role.RESEARCHER)
    bob, _ = client_for(Role.DONOR)
    account = Account.create()
    for client, expected in ((alice, 200), (bob, 409)):
        message = challenge(client, account.address)
        response = client.post(
            LINK, {"message": message, "signature": sign(message, account)}, format="json"
        )
        assert response.status_code == expected
    assert bob.get("/api/v1/me").json()["wallet_address"] is None
    # Once alice unlinks, bob may link it.
    assert alice.delete(LINK).status_code == 204
    message = challenge(bob, account.address)
    assert (
        bob.post(
            LINK, {"message": message, "signature": sign(message, account)}, format="json"
        ).status_code
        == 200
    )


def test_relinking_replaces_the_users_address(client_for) -> None:
    client, user = client_for(Role.RESEARCHER)
    for account in (Account.create(), Account.create()):
        message = challenge(client, account.address)
        client.post(LINK, {"message": message, "signature": sign(message, account)}, format="json")
    assert WalletLink.objects.get(user=user).address == account.address


@pytest.mark.parametrize("bad", ["", "0x123", "not-an-address", "0x" + "g" * 40])
def test_a_bad_address_is_a_validation_error(client_for, bad: str) -> None:
    client, _ = client_for(Role.RESEARCHER)
    response = client.post(CHALLENGE, {"address": bad}, format="json")
    assert response.status_code == 400
    assert "address" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hello", "signature": "0x" + "ab" * 65},
        {"message": "x", "signature": "0x12"},
        {},
    ],
)
def test_garbage_is_refused_cleanly(client_for, body: dict) -> None:
    client, _ = client_for(Role.RESEARCHER)
    response = client.post(LINK, body, format="json")
    assert response.status_code == 400


def test_anonymous_cannot_ask_for_a_challenge(api_client: APIClient) -> None:
    assert (
        api_client.post(CHALLENGE, {"address": Account.create().address}, format="json").status_code
        == 401
    )


def test_text_other_than_the_issued_challenge_never_reaches_the_siwe_parser(
    client_for, monkeypatch
) -> None:
    """The siwe package's ABNF parser takes seconds on some inputs of the allowed length
    (4,000 zeros took 4 s): a caller's text is matched against the issued challenge first,
    by linear-time checks, and only the issued text is parsed."""
    from siwe import SiweMessage

    parsed: list[str] = []
    real = SiweMessage.from_message

    def counting(message: str, *args, **kwargs):
        parsed.append(message)
        return real(message, *args, **kwargs)

    monkeypatch.setattr(SiweMessage, "from_message", staticmethod(counting))
    client, _ = client_for(Role.RESEARCHER)
    account = Account.create()
    message = challenge(client, account.address)
    tampered = message.replace("URI: ", "URI:  ")
    for text in ("0" * 4000, tampered, message.replace("Nonce: ", "Nonce: x")):
        response = client.post(
            LINK, {"message": text, "signature": sign(text, account)}, format="json"
        )
        assert response.status_code == 400, response.json()
    assert parsed == []
    response = client.post(
        LINK, {"message": message, "signature": sign(message, account)}, format="json"
    )
    assert response.status_code == 400  # the tampered attempt spent the nonce
    assert parsed == []
    fresh = challenge(client, account.address)
    linked = client.post(LINK, {"message": fresh, "signature": sign(fresh, account)}, format="json")
    assert linked.status_code == 200 and parsed == [fresh]
