"""Redis, the Celery broker, stops for 30 seconds in the middle of the pipeline and comes
back empty: the web keeps serving reads, /health says 503 naming the broker, a request
made meanwhile is not lost, and the pipeline carries it through to the grant."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from web3 import Web3

from ledger.localchain import anvil_accounts
from tests.support.stack import (
    LiveStack,
    auto_listing_and_researcher,
    pay_voucher,
    running_stack,
)

pytestmark = pytest.mark.integration
OUTAGE_S = 30


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveStack]:
    monkeypatch.setenv("RECONCILE_AFTER_S", "3")
    monkeypatch.setenv("RECONCILE_INTERVAL_S", "1")
    with running_stack(tmp_path) as live:
        yield live


def test_a_broker_outage_loses_nothing_and_reads_go_on(stack: LiveStack, tmp_path: Path) -> None:
    base = stack.base
    accounts = anvil_accounts()
    dataset, researcher, vcf = auto_listing_and_researcher(
        base, tmp_path, prefix="outage", donor_wallet=accounts[4], researcher_wallet=accounts[3]
    )

    stack.redis.stop()
    stopped = time.monotonic()
    health = requests.get(f"{base}/health", timeout=15)
    assert health.status_code == 503 and "broker" in health.json()["failing"], health.text
    for path in ("/", "/datasets/", f"/datasets/{dataset['id']}/", "/api/v1/datasets"):
        assert requests.get(f"{base}{path}", timeout=15).status_code == 200, path
    created = researcher.request_access(dataset["id"], statement="During the outage.")
    assert created["state"] == "approved"  # its voucher task could not be sent
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    stack.redis.start()  # empty: Redis here keeps nothing on disk

    path = f"/api/v1/access-requests/{created['id']}"
    voucher = researcher.wait_for(
        path, lambda r: r["state"] == "payable", what="the voucher, sent again", timeout_s=90
    )["voucher"]
    pay_voucher(Web3(Web3.HTTPProvider(stack.chain_url)), accounts[3], voucher)
    granted = researcher.wait_for(
        path, lambda r: r["state"] in ("granted", "settled"), what="the grant", timeout_s=90
    )
    download = researcher.call("GET", granted["grant"]["files"][0]["download_url"])
    assert download.status_code == 200 and len(download.content) > len(vcf)
    assert requests.get(f"{base}/health", timeout=15).status_code == 200
