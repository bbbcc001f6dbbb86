"""The chain indexer is killed (SIGKILL) over and over while it applies `Paid` and
`Released` events to real requests on the live system; every event still takes effect
exactly once: each request is paid, granted and settled once (one audit entry each), the
donor is paid once per request, and the escrow ends empty.

The live system runs as `make run` starts it (web, worker, beat, anvil), except that the
beat's own indexing is held off: the only indexer is a process this test starts and
SIGKILLs, again and again, until every request has settled. It applies four blocks per
database transaction, and after the marketplace has applied an event, before the commit,
it pauses a moment (the way core/failpoints.py holds a task): half the kills land there,
the others anywhere. A kill between a payment's commit and the grant task it queues
leaves the grant to the reconciler, which here looks every two seconds.
"""

from __future__ import annotations

import base64
import os
import random
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from ledger.localchain import anvil_accounts
from ledger.management.commands.deploy_contracts import DEFAULT_FEE_BPS
from tests.genomics import samples
from tests.support.stack import (
    PROJECT,
    ApiUser,
    LiveStack,
    gene_token,
    pay_voucher,
    requested_voucher,
    running_stack,
)

pytestmark = pytest.mark.integration

REQUESTS = 3
PRICE = 10**18
# The indexer as beat runs it, a few blocks per database transaction, made slow in one place:
# after the marketplace has applied an event and before the range commits, it says so and
# waits, so that the test can kill it exactly there (as core/failpoints.py does for tasks).
KILLED_INDEXER = """
import time
import django
django.setup()
from ledger.services.indexer import indexer_run
from ledger.signals import chain_event_applied

def applied_not_committed(sender, event, **kwargs):
    print("applied-uncommitted", event.name, flush=True)
    time.sleep(0.3)

chain_event_applied.connect(applied_not_committed, weak=False)
print("ready", flush=True)
while True:
    indexer_run(max_ranges=1)
"""


def next_line(process: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    """The process's next stdout line, or b"" if none came within `timeout_s`."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    return process.stdout.readline() if ready else b""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LiveStack]:
    held_off = {
        "INDEXER_INTERVAL_S": "86400",  # the beat's indexer never runs during the test
        "RECONCILE_INTERVAL_S": "2",
        "RECONCILE_AFTER_S": "3",
    }
    with running_stack(tmp_path, extra_env=held_off) as live:
        yield live


def audit_count(stack: LiveStack, request_id: str, action: str) -> int:
    return int(
        stack.sql_value(
            "SELECT count(*) FROM marketplace_auditentry WHERE object_id = %s AND action = %s",
            (request_id, action),
        )
    )


def test_events_apply_once_however_often_the_indexer_is_killed(
    stack: LiveStack, tmp_path: Path
) -> None:
    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    accounts = anvil_accounts()
    researcher_wallet, donor_wallet = accounts[3], accounts[4]

    donor = ApiUser.register(stack.base, "killed-indexer-donor", "donor")
    vcf = samples.write_variants(tmp_path / "cohort.vcf", "w", records=200).read_bytes()
    file_id = donor.upload_ready(vcf, "cohort.vcf")
    donor.link_wallet(donor_wallet)
    datasets = [
        donor.list_dataset(file_id, title=f"Cohort {n}", review="auto", price=PRICE)
        for n in range(REQUESTS)
    ]
    researcher = ApiUser.register(stack.base, "killed-indexer-researcher", "researcher")
    researcher.json(
        "PUT",
        "/api/v1/me/crypt4gh-key",
        json={"public_key": base64.b64encode(os.urandom(32)).decode()},
    )
    researcher.link_wallet(researcher_wallet)
    vouchers = [requested_voucher(researcher, dataset["id"]) for dataset in datasets]
    token = gene_token(w3, vouchers[0][1])
    market = Web3.to_checksum_address(vouchers[0][1]["market"])
    before = {
        who: int(token.functions.balanceOf(who).call())
        for who in (donor_wallet.address, researcher_wallet.address, market)
    }
    # Every payment is mined before any indexer runs: the events wait for it.
    for _, voucher in vouchers:
        pay_voucher(w3, researcher_wallet, voucher)

    env = {**stack.env(), "INDEXER_MAX_BLOCK_RANGE": "4"}
    rng = random.Random(13)  # kill timing, reproducible
    kills = inside = 0
    deadline = time.monotonic() + 240

    def settled() -> bool:
        return all(researcher.json("GET", path)["state"] == "settled" for path, _ in vouchers)

    with (tmp_path / "indexer.log").open("ab") as log:
        while not settled():
            assert time.monotonic() < deadline, (
                f"not settled after {kills} kills ({inside} inside a transaction): "
                f"{[researcher.json('GET', p)['state'] for p, _ in vouchers]}"
            )
            indexer = subprocess.Popen(
                [sys.executable, "-c", KILLED_INDEXER],
                cwd=PROJECT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                bufsize=0,  # unbuffered: select() sees every line as it comes
            )
            assert next_line(indexer, 60) == b"ready\n", (tmp_path / "indexer.log").read_text()
            if inside < 3 or rng.random() < 0.5:
                # The first runs, then half of them, are cut inside the transaction that
                # applies an event (if one comes soon): its effects were made and must all
                # be rolled back with it.
                if next_line(indexer, 5.0).startswith(b"applied-uncommitted"):
                    time.sleep(rng.uniform(0, 0.2))
                    inside += 1
            else:
                time.sleep(rng.uniform(0.2, 1.5))  # the others run on and are cut anywhere
            indexer.kill()  # SIGKILL: no handler, no cleanup, whatever it was doing
            indexer.wait()
            kills += 1
    assert inside >= 3, (kills, inside)  # kills did land inside the applying transactions

    fee = PRICE * DEFAULT_FEE_BPS // 10_000
    for path, _ in vouchers:
        request_id = path.rsplit("/", 1)[1]
        for action in ("request.paid", "request.grant", "request.settled"):
            assert audit_count(stack, request_id, action) == 1, (request_id, action)
    for dataset in datasets:
        earnings = donor.json("GET", f"/api/v1/datasets/{dataset['id']}/earnings")
        assert int(earnings["paid"]) == PRICE, earnings
        assert int(earnings["released"]) == PRICE - fee, earnings
        assert int(earnings["in_escrow"]) == 0, earnings
    after = {who: int(token.functions.balanceOf(who).call()) for who in before}
    assert after[donor_wallet.address] - before[donor_wallet.address] == REQUESTS * (PRICE - fee)
    assert before[researcher_wallet.address] - after[researcher_wallet.address] == REQUESTS * PRICE
    assert after[market] == before[market]  # nothing left in escrow, nothing paid twice
    audit = stack.manage("verify_audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
