"""The chain node is stopped and started again under the live system, then dies without
saving and comes back from an older state, taking an unconfirmed payment with it.

The node is our own anvil (saving its chain to a state file on SIGTERM), started before
the stack so that `runstack` uses it rather than starting one it would supervise.
Meanwhile the site keeps serving reads, `/health` names the chain, the indexer resumes
from its checkpoint, and no grant is ever made for a payment the canonical chain lacks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger.localchain import anvil_accounts
from tests.support.processes import AnvilNode, wait_until
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
def node_and_stack(tmp_path: Path) -> Iterator[tuple[AnvilNode, LiveStack]]:
    # Anchors every 2 s: the operator has transactions in flight when the node dies.
    live = LiveStack(tmp_path, extra_env={"ANCHOR_INTERVAL_S": "2"})
    node = AnvilNode(
        tmp_path, block_time_s=1.0, port=live.chain_port, state_path=tmp_path / "chain.json"
    )
    node.start()
    try:
        live.start()
        yield node, live
    finally:
        live.stop()
        node.stop()


def checkpoint(stack: LiveStack) -> int:
    return int(stack.sql_value("SELECT block_number FROM ledger_indexercheckpoint"))


def paid_events(stack: LiveStack, path: str) -> int:
    return int(
        stack.sql_value(
            "SELECT count(*) FROM ledger_chainevent e JOIN marketplace_accessrequest r "
            "ON e.request_id = r.chain_request_id WHERE e.name = 'Paid' AND r.id = %s",
            [path.rsplit("/", 1)[1]],
        )
    )


def anchors_mined_after(stack: LiveStack, block: int) -> int:
    return int(
        stack.sql_value(
            "SELECT count(*) FROM ledger_operatortransaction "
            "WHERE action = 'anchor' AND status = 'mined' AND receipt_block > %s",
            [block],
        )
    )


def pay_in_one_block(w3: Web3, account: LocalAccount, voucher: dict[str, Any]) -> int:
    """Approve and pay with block production stopped, then mine exactly one block holding
    both: the payment stays unconfirmed for as long as the test wants. Its block number."""
    w3.provider.make_request("evm_setIntervalMining", [0])  # type: ignore[arg-type]
    token = gene_token(w3, voucher)
    calls = [
        (
            voucher["token"],
            token.encode_abi("approve", [voucher["market"], int(voucher["amount"])]),
        ),
        (voucher["call"]["to"], voucher["call"]["data"]),
    ]
    nonce = w3.eth.get_transaction_count(account.address)
    hashes = []
    for offset, (to, data) in enumerate(calls):
        signed = account.sign_transaction(
            {
                "to": Web3.to_checksum_address(to),
                "data": data,
                "nonce": nonce + offset,
                "gas": 400_000,
                "maxFeePerGas": w3.eth.gas_price * 2 + 10**9,
                "maxPriorityFeePerGas": 10**9,
                "chainId": w3.eth.chain_id,
            }
        )
        hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    receipts = [w3.eth.get_transaction_receipt(h) for h in hashes]
    assert all(r["status"] == 1 for r in receipts), receipts
    return int(receipts[1]["blockNumber"])


def test_the_chain_node_stops_restarts_and_loses_an_unconfirmed_payment(
    node_and_stack: tuple[AnvilNode, LiveStack], tmp_path: Path
) -> None:
    node, stack = node_and_stack
    base, accounts = stack.base, anvil_accounts()
    researcher_wallet = accounts[3]
    dataset, researcher, _ = auto_listing_and_researcher(
        base,
        tmp_path,
        prefix="chain",
        donor_wallet=accounts[4],
        researcher_wallet=researcher_wallet,
    )
    first_path, voucher = requested_voucher(researcher, dataset["id"])
    second_lab, second_wallet = second_researcher(base, accounts[5])
    wait_until(lambda: checkpoint(stack) > 0, timeout_s=30, what="the indexer to run")

    # 1. The node stops (saving its chain). Reads go on; /health names the chain; a request
    #    can still be made; nothing in the stack exits.
    node.stop()
    stopped_at = checkpoint(stack)

    def health_names_the_chain() -> bool:
        health = requests.get(f"{base}/health", timeout=10)
        return health.status_code == 503 and "chain" in health.json()["failing"]

    wait_until(health_names_the_chain, timeout_s=30, what="/health to name the chain")
    for page in ("/", "/datasets/", f"/datasets/{dataset['id']}/"):
        assert requests.get(f"{base}{page}", timeout=10).status_code == 200, page
    assert researcher.call("GET", "/api/v1/datasets").status_code == 200
    assert researcher.call("GET", first_path).status_code == 200
    # One open request per researcher and dataset: a second lab asks while the node is down.
    second = second_lab.request_access(dataset["id"])
    second_path = f"/api/v1/access-requests/{second['id']}"
    time.sleep(3)  # the indexer, sender and voucher signer meet the dead node meanwhile
    assert stack.process is not None and stack.process.poll() is None, stack.log()
    assert checkpoint(stack) == stopped_at

    # 2. The node comes back with its chain: the indexer goes on from its checkpoint (no
    #    rewind), the first request is paid, granted and settled, the second gets its voucher.
    node.start()
    wait_until(lambda: checkpoint(stack) > stopped_at, timeout_s=30, what="the indexer to resume")
    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    pay_voucher(w3, researcher_wallet, voucher)
    researcher.wait_for(first_path, lambda r: r["state"] == "settled", what="settlement")
    assert "rewinding" not in stack.log_path.read_text(errors="replace")
    second_voucher = second_lab.wait_for(
        second_path, lambda r: r["state"] == "payable", what="the second voucher"
    )["voucher"]

    # 3. The node saves its chain, then dies without saving after an anchor transaction of
    #    the operator was mined and a payment was made that has no confirmation yet; it
    #    comes back from the saved chain, which never saw either.
    node.stop()
    node.start()
    wait_until(health_ok(base), timeout_s=30, what="/health to be green again")
    saved_head = int(w3.eth.block_number)
    third_lab, _ = second_researcher(base, accounts[6], name="chain-third-lab")
    third_lab.request_access(dataset["id"])  # audit entries for the next anchor
    wait_until(
        lambda: anchors_mined_after(stack, saved_head) > 0,
        timeout_s=30,
        what="an anchor transaction mined after the save",
    )
    token = gene_token(w3, second_voucher)
    balance = token.functions.balanceOf(second_wallet.address).call()
    lost_block = pay_in_one_block(w3, second_wallet, second_voucher)
    time.sleep(2)  # the indexer sees the payment's block, unconfirmed
    node.crash()
    node.start()
    assert token.functions.balanceOf(second_wallet.address).call() == balance

    def past_the_lost_block() -> bool:
        state = second_lab.json("GET", second_path)["state"]
        assert state == "payable", f"a payment not in the canonical chain moved it to {state}"
        return checkpoint(stack) >= lost_block + 2

    wait_until(past_the_lost_block, timeout_s=60, interval_s=0.25, what="the new chain to grow")
    assert paid_events(stack, second_path) == 0

    # 4. Paid again on the canonical chain, the request is granted once, and its release
    #    (whose nonce follows the lost anchor's, which the sender sent again) is mined.
    pay_voucher(w3, second_wallet, second_voucher)
    second_lab.wait_for(second_path, lambda r: r["state"] == "settled", what="settlement")
    assert paid_events(stack, second_path) == 1
    audit = stack.manage("verify_audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert ApiUser(base, "admin", "admin-change-me").call("GET", "/health").status_code == 200


def second_researcher(
    base: str, wallet: LocalAccount, *, name: str = "chain-second-lab"
) -> tuple[ApiUser, LocalAccount]:
    """Another researcher with a Crypt4GH key and a linked (funded anvil) wallet."""
    import base64
    import os

    lab = ApiUser.register(base, name, "researcher")
    lab.json(
        "PUT",
        "/api/v1/me/crypt4gh-key",
        json={"public_key": base64.b64encode(os.urandom(32)).decode()},
    )
    lab.link_wallet(wallet)
    return lab, wallet


def health_ok(base: str) -> Any:
    def check() -> bool:
        try:
            return requests.get(f"{base}/health", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    return check
