"""The one place that builds the web3 connection to the chain node.

Every other module asks this one for a `Web3`; timeouts come from settings so a dead node
makes callers fail fast instead of hanging a web request or a worker.
"""

from __future__ import annotations

from functools import lru_cache

import requests
from django.conf import settings
from web3 import Web3
from web3.providers.rpc import HTTPProvider
from web3.providers.rpc.utils import REQUEST_RETRY_ALLOWLIST, ExceptionRetryConfiguration

# What web3's HTTP provider raises when the node is down or does not answer in time.
UNREACHABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)
# Reads are retried on connection errors and timeouts; sending a raw transaction is not
# (a retried send can broadcast twice: the sender re-broadcasts the stored bytes itself).
RETRIES = ExceptionRetryConfiguration(
    errors=UNREACHABLE,
    retries=2,
    backoff_factor=0.1,
    method_allowlist=[m for m in REQUEST_RETRY_ALLOWLIST if m != "eth_sendRawTransaction"],
)


@lru_cache(maxsize=4)
def _web3_for(rpc_url: str, timeout_s: float) -> Web3:
    return Web3(
        HTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=RETRIES
        )
    )


def web3() -> Web3:
    """A Web3 bound to CHAIN_RPC_URL, cached per URL and timeout (settings may change in tests)."""
    return _web3_for(settings.CHAIN_RPC_URL, settings.CHAIN_TIMEOUT_S)


def block_number() -> int:
    return int(web3().eth.block_number)


def chain_id() -> int:
    return int(web3().eth.chain_id)


@lru_cache(maxsize=4)
def _node_chain_id(rpc_url: str) -> int:
    return int(_web3_for(rpc_url, settings.CHAIN_TIMEOUT_S).eth.chain_id)


def configured_chain_id() -> int:
    """CHAIN_ID from settings, else the node's (a chain's id never changes: cached)."""
    return int(settings.CHAIN_ID or _node_chain_id(settings.CHAIN_RPC_URL))
