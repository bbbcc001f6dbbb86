"""Linking a smart-contract wallet (EIP-1271) with Sign-In with Ethereum, on anvil with
Safe's own contracts (1.4.1): the Safe's `isValidSignature` checks that enough of its
owners signed the SafeMessage wrapping of the SIWE message's EIP-191 hash; anything else
is refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import defunct_hash_message, encode_defunct
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient
from web3 import Web3

from ledger.localchain import anvil_accounts
from ledger.models import WalletLink
from ledger.selectors.wallets import wallet_is_contract
from marketplace.models import Role
from tests.ledger.safe import (
    DELEGATECALL,
    SafeSingletons,
    SafeWallet,
    deploy_safe,
    deploy_singletons,
    safe_artifact,
)
from tests.ledger.test_wallet_linking import CHALLENGE, LINK, challenge
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _chain_id(settings) -> None:
    settings.CHAIN_ID = 31337


@pytest.fixture(scope="module")
def singletons(session_w3: Web3) -> SafeSingletons:
    return deploy_singletons(session_w3, anvil_accounts()[0])


@pytest.fixture
def chain(session_w3: Web3, settings) -> Iterator[Web3]:
    """The session's anvil as the configured chain; every change undone after the test."""
    settings.CHAIN_RPC_URL = str(session_w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    settings.CHAIN_ID = int(session_w3.eth.chain_id)
    snapshot = session_w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield session_w3
    session_w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


@pytest.fixture
def owners() -> list[LocalAccount]:
    return [Account.create() for _ in range(3)]


@pytest.fixture
def safe(chain: Web3, singletons: SafeSingletons, owners: list[LocalAccount]) -> SafeWallet:
    """A 2-of-3 Safe, as a biobank's finance team would hold one."""
    return deploy_safe(chain, anvil_accounts()[0], singletons, owners, threshold=2)


def link(client: APIClient, message: str, signature: bytes | str) -> Any:
    text = signature if isinstance(signature, str) else "0x" + signature.hex()
    return client.post(LINK, {"message": message, "signature": text}, format="json")


def siwe_hash(message: str) -> bytes:
    return bytes(defunct_hash_message(text=message))


def test_the_wallet_side_hash_is_safes_own(safe: SafeWallet) -> None:
    handler = safe.w3.eth.contract(
        address=Web3.to_checksum_address(safe.address),
        abi=safe_artifact("CompatibilityFallbackHandler")["abi"],
    )
    data = siwe_hash("any message")
    # Through the Safe's fallback, as Safe{Wallet} asks it (msg.sender is the Safe).
    assert bytes(handler.functions.getMessageHash(data).call()) == safe.message_hash(data)


def test_a_safe_links_with_its_owners_signatures(client_for, safe: SafeWallet, owners) -> None:
    client, user = client_for(Role.DONOR)
    message = challenge(client, safe.address)
    signature = safe.sign_message(siwe_hash(message), owners[:2])
    assert len(signature) == 130  # two owners: not the 65 bytes an account's key gives
    response = link(client, message, signature)
    assert response.status_code == 200, response.json()
    assert response.json()["wallet_address"] == safe.address
    assert WalletLink.objects.get(user=user).address == safe.address


def test_a_one_owner_safe_links_with_a_65_byte_signature_that_is_not_its_key(
    client_for, chain: Web3, singletons: SafeSingletons
) -> None:
    """65 bytes, like an account's signature, but recovering to the owner, not the Safe:
    the length alone must not decide between the two checks."""
    owner = Account.create()
    solo = deploy_safe(chain, anvil_accounts()[0], singletons, [owner], threshold=1)
    client, _ = client_for(Role.DONOR)
    message = challenge(client, solo.address)
    signature = solo.sign_message(siwe_hash(message), [owner])
    assert len(signature) == 65
    response = link(client, message, signature)
    assert response.status_code == 200, response.json()
    assert response.json()["wallet_address"] == solo.address


def test_a_non_owners_signature_is_refused(client_for, safe: SafeWallet, owners) -> None:
    client, _ = client_for(Role.DONOR)
    message = challenge(client, safe.address)
    outsider = Account.create()
    signature = safe.sign_message(siwe_hash(message), [owners[0], outsider])
    response = link(client, message, signature)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "wallet_verification_failed"
    assert "EIP-1271" in response.json()["error"]["message"]
    assert not WalletLink.objects.exists()


def test_fewer_owners_than_the_threshold_are_refused(client_for, safe: SafeWallet, owners) -> None:
    client, _ = client_for(Role.DONOR)
    message = challenge(client, safe.address)
    response = link(client, message, safe.sign_message(siwe_hash(message), owners[:1]))
    assert response.status_code == 400
    assert not WalletLink.objects.exists()


def test_an_owners_plain_signature_is_not_the_safes(client_for, safe: SafeWallet, owners) -> None:
    """Owners sign the SafeMessage wrapping; a bare personal_sign by owners is not it."""
    client, _ = client_for(Role.DONOR)
    message = challenge(client, safe.address)
    bare = b"".join(
        bytes(owner.sign_message(encode_defunct(text=message)).signature)
        for owner in sorted(owners[:2], key=lambda owner: int(owner.address, 16))
    )
    assert link(client, message, bare).status_code == 400
    assert not WalletLink.objects.exists()


def test_a_safe_that_approved_the_message_on_chain_links_with_an_empty_signature(
    client_for, safe: SafeWallet
) -> None:
    """Safe{Wallet}'s on-chain signing: a Safe transaction delegatecalls SignMessageLib,
    and personal_sign answers "0x"; the Safe then accepts the hash with no signature."""
    client, _ = client_for(Role.DONOR)
    message = challenge(client, safe.address)
    sign_lib = safe.w3.eth.contract(
        address=Web3.to_checksum_address(safe.singletons.sign_message_lib),
        abi=safe_artifact("SignMessageLib")["abi"],
    )
    assert link(client, message, "0x").status_code == 400  # not approved yet: refused
    message = challenge(client, safe.address)  # (the attempt burnt that challenge)
    approve = sign_lib.functions.signMessage(siwe_hash(message))._encode_transaction_data()
    safe.execute(anvil_accounts()[0], sign_lib.address, approve, operation=DELEGATECALL)
    response = link(client, message, "0x")
    assert response.status_code == 200, response.json()
    assert response.json()["wallet_address"] == safe.address


def test_a_contract_without_eip1271_is_refused(client_for, safe: SafeWallet, owners) -> None:
    client, _ = client_for(Role.DONOR)
    no_eip1271 = safe.singletons.sign_message_lib  # code, but no isValidSignature
    message = challenge(client, no_eip1271)
    response = link(client, message, safe.sign_message(siwe_hash(message), owners[:2]))
    assert response.status_code == 400
    assert not WalletLink.objects.exists()


def test_accounts_with_keys_still_link_as_before(client_for, chain: Web3) -> None:
    client, _ = client_for(Role.RESEARCHER)
    account = Account.create()
    message = challenge(client, account.address)
    signature = bytes(account.sign_message(encode_defunct(text=message)).signature)
    assert link(client, message, signature).status_code == 200


def test_a_contract_wallet_needs_the_chain_and_says_so(client_for, settings, owners) -> None:
    settings.CHAIN_ID = 31337
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.CHAIN_TIMEOUT_S = 1.0
    client, _ = client_for(Role.DONOR)
    message = challenge(client, Account.create().address)
    response = link(client, message, "0x" + "ab" * 130)
    assert response.status_code == 503
    assert "contract wallet" in response.json()["error"]["message"]
    assert not WalletLink.objects.exists()


@pytest.mark.parametrize("signature", ["0x" + "a" * 129, "ab" * 65, "0x" + "zz" * 65])
def test_a_signature_that_is_not_hex_bytes_is_refused_before_the_nonce_burns(
    client_for, signature: str
) -> None:
    client, _ = client_for(Role.RESEARCHER)
    account = Account.create()
    response = client.post(CHALLENGE, {"address": account.address}, format="json")
    message = response.json()["message"]
    refused = link(client, message, signature)
    assert refused.status_code == 400
    assert "signature" in refused.json()["error"]["fields"]
    good = bytes(account.sign_message(encode_defunct(text=message)).signature)
    assert link(client, message, good).status_code == 200  # the nonce is still live


def test_which_wallets_count_as_contract_wallets(chain: Web3, safe: SafeWallet, settings) -> None:
    """What the pay page asks: code and no key of its own (a Safe), not an account with a
    key, even one that delegated its code (EIP-7702 designator 0xef0100 || address)."""
    account, delegated = Account.create(), Account.create()
    designator = "0xef0100" + safe.singletons.safe.removeprefix("0x").lower()
    chain.provider.make_request("anvil_setCode", [delegated.address, designator])  # type: ignore[arg-type]
    assert chain.eth.get_code(delegated.address).hex().startswith("ef0100")
    assert wallet_is_contract(address=safe.address) is True
    assert wallet_is_contract(address=account.address) is False
    assert wallet_is_contract(address=delegated.address) is False
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{free_port()}"
    settings.CHAIN_TIMEOUT_S = 1.0
    assert wallet_is_contract(address=safe.address) is None  # unknown: offer both ways


def test_the_challenge_names_the_hash_a_contract_wallet_approves(client_for) -> None:
    client, _ = client_for(Role.DONOR)
    body = client.post(CHALLENGE, {"address": Account.create().address}, format="json").json()
    assert body["message_hash"] == "0x" + siwe_hash(body["message"]).hex()
