"""A reorg deeper than the confirmations takes a payment back after its grant, on the live
system (anvil's `anvil_reorg` drops the blocks and their transactions): the indexer
rewinds to the common ancestor, the grant is withdrawn at once, the request waits for a
payment again, admins are told, and the researcher's tokens are back."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3

from ledger.localchain import anvil_accounts
from tests.support.processes import wait_until
from tests.support.stack import (
    ApiUser,
    LiveStack,
    auto_listing_and_researcher,
    gene_token,
    pay_voucher,
    requested_voucher,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(live_stack: LiveStack) -> LiveStack:
    return live_stack


def test_a_payment_reorged_away_after_its_grant_loses_the_grant(
    stack: LiveStack, tmp_path: Path
) -> None:
    base, accounts = stack.base, anvil_accounts()
    dataset, researcher, _ = auto_listing_and_researcher(
        base, tmp_path, prefix="reorg", donor_wallet=accounts[4], researcher_wallet=accounts[3]
    )
    path, voucher = requested_voucher(researcher, dataset["id"])
    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    token = gene_token(w3, voucher)
    before = token.functions.balanceOf(accounts[3].address).call()
    paid = pay_voucher(w3, accounts[3], voucher)
    granted = researcher.wait_for(
        path, lambda r: r["state"] in ("granted", "settled"), what="the grant"
    )
    url = granted["grant"]["files"][0]["download_url"]
    assert researcher.call("GET", url).status_code == 200

    # Take back every block from the approval on: deeper than CONFIRMATIONS (2).
    depth = int(w3.eth.block_number) - int(paid["blockNumber"]) + 3
    answer = w3.provider.make_request("anvil_reorg", [depth, []])  # type: ignore[arg-type]
    assert "error" not in answer, answer
    assert token.functions.balanceOf(accounts[3].address).call() == before

    after = researcher.wait_for(
        path, lambda r: r["state"] == "payable", what="the grant to be withdrawn", timeout_s=60
    )
    assert after["grant"] is None and after["voucher"] is not None
    assert researcher.call("GET", url).status_code in (403, 404)
    admin = ApiUser(base, "admin", "admin-change-me")

    def admins_told() -> bool:
        notes = admin.json("GET", "/api/v1/notifications")["results"]
        return any("canonical chain" in note["message"] for note in notes)

    wait_until(admins_told, timeout_s=30, what="the admins to be told")
