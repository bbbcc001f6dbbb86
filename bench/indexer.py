"""Indexer throughput: N `Paid` events generated on anvil, indexed into PostgreSQL; then
the same again with the indexer process killed (SIGKILL) midway and restarted, which must
end with exactly N events applied.

    .venv/bin/python bench/indexer.py [--events 5000]

Target: >= 500 events/s. Needs the local PostgreSQL (`make test` starts it).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.common import PROJECT, recreate_database, table

DATABASE = "genemarket_bench_indexer"
RUN_INDEXER = """
import django, sys
django.setup()
from ledger.services.indexer import indexer_run
while indexer_run(max_ranges=1).checkpoint < int(sys.argv[1]):
    pass
"""


def generate(env, count: int) -> None:
    """`count` payments from five buyers, sent without waiting, then mined."""
    from ledger.vouchers import Voucher

    buyers = env.accounts[3:8]
    for buyer in buyers:
        env.approve(buyer, 2**255)
    nonces = {b.address: env.w3.eth.get_transaction_count(b.address) for b in buyers}
    last = None
    for index in range(count):
        buyer = buyers[index % len(buyers)]
        voucher: Voucher = env.voucher(buyer=buyer.address, amount=10**15 + index)
        call = env.market.functions.pay(voucher.as_tuple(), env.sign(voucher))
        tx = call.build_transaction(
            {
                "from": buyer.address,
                "nonce": nonces[buyer.address],
                "gas": 200_000,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        nonces[buyer.address] += 1
        last = env.w3.eth.send_raw_transaction(buyer.sign_transaction(tx).raw_transaction)
    env.w3.eth.wait_for_transaction_receipt(last, timeout=300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    from tests.support.processes import AnvilNode

    node = AnvilNode(Path(tempfile.mkdtemp(prefix="indexer-")))
    node.start()
    os.environ.update(
        {
            "DATABASE_URL": recreate_database(DATABASE),
            "CHAIN_RPC_URL": node.url,
            "CONFIRMATIONS": "0",
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
        }
    )
    try:
        from bench.support.common import django_scratch

        django_scratch()
        from web3 import Web3

        from ledger.artifacts import load_artifact
        from ledger.localchain import anvil_accounts
        from ledger.models import ChainEvent, Deployment, IndexedBlock, IndexerCheckpoint
        from ledger.selectors.deployments import MARKET, TOKEN
        from ledger.services.indexer import indexer_run
        from tests.ledger.contracts_env import deploy_market

        w3 = Web3(Web3.HTTPProvider(node.url))
        accounts = anvil_accounts()
        env = deploy_market(w3, accounts, dict(load_artifact("GeneToken")), (accounts[0].address,))
        start = w3.eth.block_number
        for name, contract in ((TOKEN, env.token), (MARKET, env.market)):
            Deployment.objects.create(
                chain_id=31337, name=name, address=contract.address, block_number=start
            )
        started = time.perf_counter()
        generate(env, args.events)
        generated = time.perf_counter() - started
        head = w3.eth.block_number

        started = time.perf_counter()
        indexer_run(max_ranges=10**6)
        indexing = time.perf_counter() - started
        straight = ChainEvent.objects.count()

        ChainEvent.objects.all().delete()
        IndexedBlock.objects.all().delete()
        IndexerCheckpoint.objects.all().delete()
        env_vars = {**os.environ, "INDEXER_MAX_BLOCK_RANGE": "100"}
        kills = 0
        while True:
            process = subprocess.Popen(
                [sys.executable, "-c", RUN_INDEXER, str(head)], cwd=PROJECT, env=env_vars
            )
            try:
                process.wait(timeout=0.8)
                break
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
        restarted = ChainEvent.objects.count()
        duplicates = ChainEvent.objects.values("tx_hash", "log_index").distinct().count()
    finally:
        node.stop()
    rows = [
        [
            "generate on anvil",
            f"{args.events:,} pay txs",
            f"{generated:.1f} s",
            f"{args.events / generated:,.0f} tx/s",
        ],
        [
            "index into PostgreSQL",
            f"{straight:,} events",
            f"{indexing:.2f} s",
            f"{straight / indexing:,.0f} events/s",
        ],
        [
            f"killed {kills}x with SIGKILL, restarted",
            f"{restarted:,} events",
            f"{duplicates:,} distinct",
            "exact" if restarted == args.events == duplicates else "WRONG",
        ],
    ]
    table(
        f"Indexer: {args.events:,} Paid events (target >= 500 events/s; exactly "
        f"{args.events:,} after kills)",
        ["run", "count", "time", "rate"],
        rows,
    )
    if rows[-1][-1] != "exact":  # a wrong count fails `make bench`, not only its table
        raise SystemExit(f"indexer: {restarted} events after the kills, not {args.events}")


if __name__ == "__main__":
    main()
