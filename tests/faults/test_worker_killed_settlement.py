"""The Celery worker's processes are killed (SIGKILL) in the middle of a grant and in the
middle of a release, on the live system: the grant is made once and the donor is paid by
one release transaction.

A grant or a release takes milliseconds, so the worker runs with two failpoints
(core/failpoints.py) that hold the task exactly there until the test has killed it:
`grant.headers_written` (the researcher's headers are written, the transaction not yet
committed) and `release.signed` (the release transaction is signed and stored, not yet
broadcast).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from ledger.localchain import anvil_accounts
from ledger.management.commands.deploy_contracts import DEFAULT_FEE_BPS
from tests.support.processes import wait_until
from tests.support.stack import (
    LiveStack,
    auto_listing_and_researcher,
    gene_token,
    pay_voucher,
    requested_voucher,
    running_stack,
)

pytestmark = pytest.mark.integration

FAILPOINTS = ("grant.headers_written", "release.signed")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LiveStack]:
    failpoints = tmp_path / "failpoints"
    with running_stack(
        tmp_path,
        extra_env={"FAILPOINTS": ",".join(FAILPOINTS), "FAILPOINT_DIR": str(failpoints)},
    ) as live:
        yield live


def reached(stack: LiveStack, name: str) -> None:
    marker = Path(stack.extra_env["FAILPOINT_DIR"]) / name
    wait_until(marker.exists, timeout_s=60, what=f"a task to reach the failpoint {name}")


def release_transactions(w3: Web3, market: str) -> list[str]:
    """Every mined transaction that called `release` on the market, from the chain itself."""
    selector = Web3.keccak(text="release(bytes32)")[:4]
    found = []
    for number in range(int(w3.eth.block_number) + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            assert not isinstance(tx, bytes)  # full transactions, not hashes
            if tx["to"] == market and bytes(tx["input"])[:4] == selector:
                found.append(str(Web3.to_hex(tx["hash"])))
    return found


def test_a_grant_and_its_release_survive_their_worker_being_killed(
    stack: LiveStack, tmp_path: Path
) -> None:
    accounts = anvil_accounts()
    donor_wallet, researcher_wallet = accounts[4], accounts[3]
    dataset, researcher, _ = auto_listing_and_researcher(
        stack.base,
        tmp_path,
        prefix="killed-settlement",
        donor_wallet=donor_wallet,
        researcher_wallet=researcher_wallet,
    )
    path, voucher = requested_voucher(researcher, dataset["id"])
    request_id = path.rsplit("/", 1)[1]
    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    token = gene_token(w3, voucher)
    donor_before = token.functions.balanceOf(donor_wallet.address).call()
    pay_voucher(w3, researcher_wallet, voucher)

    grants_sql = (
        "SELECT count(*) FROM genomics_grant g JOIN marketplace_dataset_files f "
        "ON f.genomicfile_id = g.file_id JOIN marketplace_accessrequest r "
        "ON r.dataset_id = f.dataset_id WHERE r.id = %s"
    )
    state_sql = "SELECT state FROM marketplace_accessrequest WHERE id = %s"
    releases_sql = (
        "SELECT count(*) FROM ledger_operatortransaction WHERE action = 'release' AND key = %s"
    )

    # Mid-grant: the delivery is on chain, the headers are written inside the grant's open
    # transaction.
    reached(stack, "grant.headers_written")
    assert stack.sql_value(state_sql, [request_id]) == "delivering"
    stack.kill_worker_pool()

    # The grant task comes back, commits, and stops again with the release signed.
    reached(stack, "release.signed")
    assert stack.sql_value(state_sql, [request_id]) == "granted"
    assert stack.sql_value(releases_sql, [request_id]) == 1
    stack.kill_worker_pool()

    settled = researcher.wait_for(
        path, lambda r: r["state"] == "settled", what="the release", timeout_s=90
    )
    # One header for the researcher's key (no double grant), one delivery and one release.
    assert stack.sql_value(grants_sql, [request_id]) == 1
    assert stack.sql_value(releases_sql, [request_id]) == 1
    assert stack.sql_value(releases_sql.replace("'release'", "'deliver'"), [request_id]) == 1

    fee = int(voucher["amount"]) * DEFAULT_FEE_BPS // 10_000
    assert token.functions.balanceOf(donor_wallet.address).call() == (
        donor_before + int(voucher["amount"]) - fee
    )
    assert len(release_transactions(w3, Web3.to_checksum_address(voucher["market"]))) == 1
    actions = [step["action"] for step in settled["timeline"]]
    assert actions.count("grant") == 1 and actions.count("settled") == 1, actions
    download = researcher.call("GET", settled["grant"]["files"][0]["download_url"])
    assert download.status_code == 200, download.text
