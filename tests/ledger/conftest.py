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
