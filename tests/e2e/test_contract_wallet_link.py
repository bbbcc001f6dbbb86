"""Linking a Safe from the profile page (Debian's chromium, Django's live test server, a
private anvil with Safe 1.4.1's contracts). The page's wallet is the Safe as Safe{Wallet}
presents it to a site over WalletConnect: its address is the account, and `personal_sign`
answers with the owners' signatures over the SafeMessage wrapping (off-chain signing) or
with "0x" while the Safe approves the message in a transaction (on-chain signing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from eth_account import Account
from eth_account.messages import defunct_hash_message
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, Page, expect
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from ledger.localchain import anvil_accounts
from ledger.models import WalletLink
from marketplace.models import Role
from tests.e2e.conftest import login_cookie
from tests.e2e.wallet import BrowserWallet
from tests.ledger.safe import (
    DELEGATECALL,
    SafeSingletons,
    SafeWallet,
    deploy_safe,
    deploy_singletons,
    safe_artifact,
)
from tests.support.processes import AnvilNode

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class SafeBrowserWallet(BrowserWallet):
    """The Safe as the page's EIP-1193 wallet; everything else goes to anvil."""

    def __init__(self, safe: SafeWallet, signers: list[LocalAccount], rpc_url: str) -> None:
        super().__init__(safe.owners[0], rpc_url)
        self.safe, self.signers = safe, signers
        self.on_chain = False
        self.asked: list[bytes] = []  # hashes the page asked the Safe to approve

    def _answer(self, method: str, params: list[Any]) -> Any:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.safe.address]
        if method == "personal_sign":
            assert params[1].lower() == self.safe.address.lower()
            message_hash = bytes(defunct_hash_message(hexstr=params[0]))
            self.asked.append(message_hash)
            if self.on_chain:
                return "0x"
            return "0x" + self.safe.sign_message(message_hash, self.signers).hex()
        return super()._answer(method, params)


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    node = AnvilNode(tmp_path_factory.mktemp("safe-anvil"))
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def singletons(anvil: AnvilNode) -> SafeSingletons:
    w3 = Web3(HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))
    return deploy_singletons(w3, anvil_accounts()[0])


@pytest.fixture
def safe(anvil: AnvilNode, singletons: SafeSingletons, settings) -> SafeWallet:
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_ID = 31337
    w3 = Web3(HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))
    owners = [Account.create() for _ in range(3)]
    return deploy_safe(w3, anvil_accounts()[0], singletons, owners, threshold=2)


@pytest.fixture
def profile(
    chromium: Browser, live_server, make_user, monkeypatch, tmp_path: Path
) -> Iterator[Page]:
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    context = chromium.new_context()
    context.add_cookies([login_cookie(make_user(Role.DONOR), live_server.url)])  # type: ignore[list-item]
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def open_profile(page: Page, wallet: SafeBrowserWallet, base: str) -> None:
    wallet.install(page)
    page.goto(f"{base}/profile/")
    page.get_by_role("button", name="Link a wallet").click()


def test_a_safe_links_with_its_owners_signatures(
    profile: Page, safe: SafeWallet, anvil: AnvilNode, live_server
) -> None:
    wallet = SafeBrowserWallet(safe, safe.owners[1:], anvil.url)
    open_profile(profile, wallet, live_server.url)
    expect(profile.locator("[data-wallet-current]")).to_have_text(f"Linked: {safe.address}")
    assert WalletLink.objects.get().address == safe.address


def test_a_safe_signed_by_a_non_owner_is_refused(
    profile: Page, safe: SafeWallet, anvil: AnvilNode, live_server
) -> None:
    wallet = SafeBrowserWallet(safe, [safe.owners[0], Account.create()], anvil.url)
    open_profile(profile, wallet, live_server.url)
    expect(profile.locator("[data-wallet-error]")).to_contain_text("EIP-1271")
    expect(profile.locator("[data-wallet-current]")).to_have_text("Not linked.")
    assert not WalletLink.objects.exists()


def test_a_safe_that_signs_on_chain_is_linked_once_its_transaction_executed(
    profile: Page, safe: SafeWallet, anvil: AnvilNode, live_server
) -> None:
    wallet = SafeBrowserWallet(safe, [], anvil.url)
    wallet.on_chain = True
    open_profile(profile, wallet, live_server.url)
    current = profile.locator("[data-wallet-current]")
    expect(current).to_contain_text("waiting for the transaction to be executed")
    profile.wait_for_timeout(4000)  # a poll or two: nothing is linked before the approval
    assert not WalletLink.objects.exists()
    # The owners execute the Safe transaction that approves the message (SignMessageLib).
    sign_lib = safe.w3.eth.contract(
        address=Web3.to_checksum_address(safe.singletons.sign_message_lib),
        abi=safe_artifact("SignMessageLib")["abi"],
    )
    approve = sign_lib.functions.signMessage(wallet.asked[-1])._encode_transaction_data()
    safe.execute(anvil_accounts()[0], sign_lib.address, approve, operation=DELEGATECALL)
    expect(current).to_have_text(f"Linked: {safe.address}")
    assert WalletLink.objects.get().address == safe.address
