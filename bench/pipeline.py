"""The marketplace pipeline under a stream of payments: N requests taken through
approve -> pay on anvil -> granted -> released, by the system as `make run` starts it
(web, beat, one Celery worker running one task at a time, anvil with 1 s blocks) on
PostgreSQL and Redis.

    .venv/bin/python bench/pipeline.py [--requests 200] [--rate 4]

Latency is measured from the moment the block that confirms the `Paid` event appears
(the payment's block + CONFIRMATIONS, seen by polling the node every 20 ms) to the
`grant` entry of the request's timeline (the grant headers commit with it: from then the
researcher's download answers; the worker first waits for its `deliver` transaction to be
mined, so this includes one block) and to `settled`. Every request's download is then
fetched to check that it serves bytes. Anchor: the block time, in the same run. Target
(issue 12): confirmed `Paid` -> downloadable p95 under 4 block times. Needs the local
PostgreSQL and redis-server.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/genemarket")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

from eth_account import Account
from web3 import Web3

from bench.support.common import table
from tests.support.stack import ApiUser, LiveStack

RESEARCHERS = 10
CONFIRMATIONS = 2


class BlockClock:
    """When each block number was first seen: the wall-clock moment it was mined."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.is_set():
            number = self.w3.eth.block_number
            now = time.time()
            for missing in range(max(self.seen, default=number - 1) + 1, number + 1):
                self.seen.setdefault(missing, now)
            time.sleep(0.02)

    def block_time(self) -> float:
        numbers = sorted(self.seen)[-30:]
        gaps = [self.seen[b] - self.seen[a] for a, b in itertools.pairwise(numbers)]
        return statistics.median(gaps)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rate", type=float, default=4.0, help="payments sent per second")
    args = parser.parse_args()
    os.environ["WORKER_CONCURRENCY"] = "1"
    os.environ["CONFIRMATIONS"] = str(CONFIRMATIONS)
    # One machine plays every user: lift the per-address limits a real crowd spreads over.
    os.environ.update(THROTTLE_REGISTER="10000/hour", THROTTLE_USER="100000/minute")
    stack = LiveStack(Path(tempfile.mkdtemp(prefix="pipeline-")))
    try:
        stack.start()
        run(stack, args.requests, args.rate)
    finally:
        stack.stop()


def run(stack: LiveStack, count: int, rate: float) -> None:
    from ledger.artifacts import load_artifact
    from ledger.localchain import anvil_accounts
    from tests.genomics import samples

    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    base = stack.base
    deployer, donor_wallet = anvil_accounts()[0], anvil_accounts()[4]
    donor = ApiUser.register(base, "bench-donor", "donor")
    vcf = samples.write_variants(Path(stack.tmp) / "bench.vcf", "w", records=500).read_bytes()
    file_id = donor.upload(vcf, "bench.vcf")
    donor.wait_for(f"/api/v1/files/{file_id}", lambda f: f["state"] == "ready", what="ingest")
    donor.link_wallet(donor_wallet)
    # A researcher has one open request per dataset (issue 16 §7): the same file is listed
    # in as many datasets as each researcher makes requests, so request i is researcher
    # i % RESEARCHERS asking for dataset i // RESEARCHERS. The requests, payments and
    # grants are the same as with one dataset (one file, one grant per request).
    datasets = [
        donor.json(
            "POST",
            "/api/v1/datasets",
            expect=201,
            json={
                "title": f"Bench cohort {number}",
                "files": [file_id],
                "duo_codes": ["DUO:0000042"],
                "price": str(10**18),
                "access_days": 30,
                "review": "auto",
            },
        )
        for number in range(-(-count // RESEARCHERS))
    ]
    chain = donor.json("GET", "/api/v1/chain")
    token = w3.eth.contract(
        address=Web3.to_checksum_address(chain["token"]), abi=load_artifact("GeneToken")["abi"]
    )
    wallets, people = [], []
    nonce = int(w3.eth.get_transaction_count(deployer.address))
    for index in range(RESEARCHERS):
        wallet = Account.create()
        w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10**21)])  # type: ignore[arg-type]
        transfer = token.functions.transfer(wallet.address, count * 10**18).build_transaction(
            {"from": deployer.address, "nonce": nonce, "gas": 100_000}  # type: ignore[arg-type]
        )
        nonce += 1
        w3.eth.send_raw_transaction(deployer.sign_transaction(transfer).raw_transaction)  # type: ignore[arg-type]
        person = ApiUser.register(base, f"bench-researcher-{index}", "researcher")
        person.json(
            "PUT",
            "/api/v1/me/crypt4gh-key",
            json={"public_key": __import__("base64").b64encode(os.urandom(32)).decode()},
        )
        person.link_wallet(wallet)
        wallets.append(wallet)
        people.append(person)
    nonces: dict[str, int] = {}
    for wallet in wallets:
        approve = token.functions.approve(chain["market"], 2**255).build_transaction(
            {"from": wallet.address, "nonce": 0, "gas": 100_000}  # type: ignore[arg-type]
        )
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(wallet.sign_transaction(approve).raw_transaction)
        )
        nonces[wallet.address] = 1

    print(f"submitting {count} requests (auto review) and waiting for their vouchers…")
    requests = []
    for index in range(count):
        person = people[index % RESEARCHERS]
        dataset = datasets[index // RESEARCHERS]
        created = person.request_access(dataset["id"], statement="Benchmark.")
        requests.append((person, wallets[index % RESEARCHERS], created["id"]))
    vouchers = {}
    for person, _, request_id in requests:
        vouchers[request_id] = person.wait_for(
            f"/api/v1/access-requests/{request_id}",
            lambda r: r["state"] == "payable",
            what="a voucher",
            timeout_s=300,
        )["voucher"]

    clock = BlockClock(w3)
    print(f"paying {count} requests at {rate}/s…")
    sent = {}
    for _, wallet, request_id in requests:
        call = vouchers[request_id]["call"]
        tx = {
            "from": wallet.address,
            "to": call["to"],
            "data": call["data"],
            "nonce": nonces[wallet.address],
            "gas": 300_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
            "chainId": 31337,
        }
        nonces[wallet.address] += 1
        sent[request_id] = w3.eth.send_raw_transaction(wallet.sign_transaction(tx).raw_transaction)
        time.sleep(1 / rate)
    paid_block = {}
    for request_id, tx_hash in sent.items():
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        assert receipt["status"] == 1, receipt
        paid_block[request_id] = int(receipt["blockNumber"])

    to_granted, to_settled = [], []
    for person, _, request_id in requests:
        done = person.wait_for(
            f"/api/v1/access-requests/{request_id}",
            lambda r: r["state"] == "settled",
            what="settlement",
            timeout_s=600,
        )
        at = {
            step["action"]: datetime.fromisoformat(step["at"]).timestamp()
            for step in done["timeline"]
        }
        confirmed = clock.seen[paid_block[request_id] + CONFIRMATIONS]
        to_granted.append(at["grant"] - confirmed)
        to_settled.append(at["settled"] - confirmed)
        first = done["grant"]["files"][0]["download_url"]
        response = person.call("GET", first, headers={"Range": "bytes=0-0"})
        assert response.status_code in (200, 206) and response.content, response.status_code
    clock.stop.set()
    block = clock.block_time()
    rows = []
    for name, values in (
        ("confirmed -> downloadable (granted)", to_granted),
        ("confirmed -> settled", to_settled),
    ):
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        rows.append(
            [name, f"{p50:.2f} s", f"{p95:.2f} s", f"{max(values):.2f} s", f"{p95 / block:.2f}"]
        )
    table(
        f"Pipeline: {count} requests, payments at {rate}/s, one worker (concurrency 1), "
        f"CONFIRMATIONS={CONFIRMATIONS}; anchor: block time {block:.2f} s",
        ["latency", "p50", "p95", "max", "p95 / block time"],
        rows,
    )
    verdict = "met" if percentile(to_granted, 0.95) < 4 * block else "NOT met"
    print(f"target p95 confirmed Paid -> downloadable < 4 block times: {verdict}")


if __name__ == "__main__":
    main()
