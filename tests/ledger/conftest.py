"""Chain fixtures: one private anvil per test session, reverted to a snapshot per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from ledger.artifacts import load_artifact
from ledger.localchain import anvil_accounts
from tests.ledger.contracts_env import MarketEnv, deploy_market
from tests.support.processes import AnvilNode


@pytest.fixture(scope="session")
def session_anvil(tmp_path_factory) -> Iterator[AnvilNode]:
    node = AnvilNode(tmp_path_factory.mktemp("anvil"))
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def session_w3(session_anvil: AnvilNode) -> Web3:
    return Web3(HTTPProvider(session_anvil.url, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="session")
def _deployed(session_w3: Web3) -> MarketEnv:
    accounts = anvil_accounts()
    return deploy_market(
        session_w3, accounts, dict(load_artifact("GeneToken")), (accounts[0].address,)
    )


@pytest.fixture
def env(_deployed: MarketEnv, session_w3: Web3) -> Iterator[MarketEnv]:
    """The deployed market, with every change undone after the test (evm_snapshot)."""
    snapshot = session_w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield _deployed
    session_w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


@pytest.fixture
def chain_db(env: MarketEnv, settings, db) -> MarketEnv:
    """The snapshot-reverted market, recorded as this chain's deployment in the database."""
    from ledger.models import Deployment
    from ledger.selectors.deployments import MARKET, TOKEN

    settings.CHAIN_RPC_URL = str(env.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    settings.CHAIN_ID = int(env.w3.eth.chain_id)
    settings.CONFIRMATIONS = 2
    settings.MARKET_ADDRESS = env.market.address  # the worker's pinned market
    start = int(env.w3.eth.block_number)
    for name, contract in ((TOKEN, env.token), (MARKET, env.market)):
        Deployment.objects.update_or_create(
            chain_id=settings.CHAIN_ID,
            name=name,
            defaults={"address": contract.address, "block_number": start},
        )
    return env


@pytest.fixture
def operator_key(chain_db: MarketEnv, monkeypatch) -> MarketEnv:
    """Run as the worker holding the operator key (anvil account 1)."""
    from core import worker_secrets

    monkeypatch.setenv("OPERATOR_PRIVATE_KEY", chain_db.operator.key.hex())
    monkeypatch.setattr(worker_secrets, "_in_worker", True)
    from ledger.operator import _account_from

    _account_from.cache_clear()
    return chain_db
