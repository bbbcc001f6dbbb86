"""Redis, the Celery broker, stops for 30 seconds in the middle of the pipeline and comes
back empty: the web keeps serving reads, /health says 503 naming the broker, a request
made meanwhile is not lost, and the pipeline carries it through to the grant."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from web3 import Web3

from ledger.artifacts import load_artifact
from ledger.localchain import anvil_accounts
from tests.acceptance.test_marketplace_flow import send
from tests.genomics import samples
from tests.support.stack import ApiUser, LiveStack, running_stack

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
    donor = ApiUser.register(base, "outage-donor", "donor")
    vcf = samples.write_variants(tmp_path / "d.vcf", "w", records=500).read_bytes()
    file_id = donor.upload(vcf, "d.vcf")
    donor.wait_for(f"/api/v1/files/{file_id}", lambda f: f["state"] == "ready", what="ingest")
    donor.link_wallet(accounts[4])
    dataset = donor.json(
        "POST",
        "/api/v1/datasets",
        expect=201,
        json={
            "title": "Outage cohort",
            "files": [file_id],
            "duo_codes": ["DUO:0000042"],
            "price": str(10**18),
            "access_days": 30,
            "review": "auto",
        },
    )
    researcher = ApiUser.register(base, "outage-researcher", "researcher")
    researcher.json(
        "PUT",
        "/api/v1/me/crypt4gh-key",
        json={"public_key": base64.b64encode(os.urandom(32)).decode()},
    )
    researcher.link_wallet(accounts[3])

    stack.redis.stop()
    stopped = time.monotonic()
    health = requests.get(f"{base}/health", timeout=15)
    assert health.status_code == 503 and "broker" in health.json()["failing"], health.text
    for path in ("/", "/datasets/", f"/datasets/{dataset['id']}/", "/api/v1/datasets"):
        assert requests.get(f"{base}{path}", timeout=15).status_code == 200, path
    created = researcher.json(
        "POST",
        "/api/v1/access-requests",
        expect=201,
        json={
            "dataset": dataset["id"],
            "purpose_codes": ["DUO:0000042"],
            "statement": "During the outage.",
            "accept_terms": True,
        },
    )
    assert created["state"] == "approved"  # its voucher task could not be sent
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    stack.redis.start()  # empty: Redis here keeps nothing on disk

    path = f"/api/v1/access-requests/{created['id']}"
    voucher = researcher.wait_for(
        path, lambda r: r["state"] == "payable", what="the voucher, sent again", timeout_s=90
    )["voucher"]
    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    token = w3.eth.contract(
        address=Web3.to_checksum_address(voucher["token"]), abi=load_artifact("GeneToken")["abi"]
    )
    market = Web3.to_checksum_address(voucher["market"])
    send(w3, accounts[3], voucher["token"], token.encode_abi("approve", args=[market, 10**18]))
    send(w3, accounts[3], voucher["call"]["to"], voucher["call"]["data"])
    granted = researcher.wait_for(
        path, lambda r: r["state"] in ("granted", "settled"), what="the grant", timeout_s=90
    )
    download = researcher.call("GET", granted["grant"]["files"][0]["download_url"])
    assert download.status_code == 200 and len(download.content) > len(vcf)
    assert requests.get(f"{base}/health", timeout=15).status_code == 200
