"""`manage.py deploy_contracts` on a fresh anvil, and `GET /api/v1/chain`."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from web3 import Web3

from ledger.artifacts import load_artifact
from ledger.localchain import anvil_accounts
from ledger.models import Deployment
from ledger.services.deployment import GENE

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def fresh_chain(anvil_node, settings):
    settings.CHAIN_RPC_URL = anvil_node.url
    settings.CHAIN_ID = None
    return anvil_node


def test_deploy_records_addresses_and_funds_the_local_accounts(fresh_chain) -> None:
    out = io.StringIO()
    call_command("deploy_contracts", stdout=out)
    assert "Deployed on chain 31337" in out.getvalue()
    rows = {row.name: row for row in Deployment.objects.all()}
    assert set(rows) == {"token", "market"}
    w3 = Web3(Web3.HTTPProvider(fresh_chain.url))
    token = w3.eth.contract(
        address=Web3.to_checksum_address(rows["token"].address),
        abi=load_artifact("GeneToken")["abi"],
    )
    for account in anvil_accounts():
        assert token.functions.balanceOf(account.address).call() == 1_000_000 * GENE
    market = w3.eth.contract(
        address=Web3.to_checksum_address(rows["market"].address),
        abi=load_artifact("AccessMarket")["abi"],
    )
    assert market.functions.operator().call() == anvil_accounts()[1].address
    assert market.functions.token().call() == token.address
    again = io.StringIO()
    call_command("deploy_contracts", stdout=again)
    assert "Already deployed" in again.getvalue()
    assert Deployment.objects.get(name="market").address == rows["market"].address


def test_a_restarted_chain_gets_a_new_deployment(fresh_chain, tmp_path) -> None:
    call_command("deploy_contracts", stdout=io.StringIO())
    old = Deployment.objects.get(name="market").address
    fresh_chain.stop()
    fresh_chain.start()  # a new, empty chain on the same port
    out = io.StringIO()
    call_command("deploy_contracts", stdout=out)
    assert "Deployed" in out.getvalue() and "Already" not in out.getvalue()
    assert Deployment.objects.get(name="market").address == old  # same deployer nonce 0..


def test_chain_status_api(fresh_chain) -> None:
    call_command("deploy_contracts", stdout=io.StringIO())
    body = Client().get("/api/v1/chain").json()
    assert body["chain_id"] == 31337
    assert body["market"] == Deployment.objects.get(name="market").address
    assert body["token"] == Deployment.objects.get(name="token").address
    assert body["head"] >= 1 and body["confirmed_block"] is None and body["lag"] is None


def test_chain_status_says_when_the_node_is_down(fresh_chain) -> None:
    fresh_chain.stop()
    response = Client().get("/api/v1/chain")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
