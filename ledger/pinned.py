"""What the worker trusts about the chain: its own configuration, never a database row.

The web tier shares the database, so a `Deployment` row is a hint, not a proof
(RELIABILITY.md 23). The worker reads escrows from the market address pinned in its own
settings (MARKET_ADDRESS) and signs only for the configured chain id. At start-up it
refuses to run when the database names another market: that is a misconfiguration or a
tampered row, and either way the worker must not act on it.

When MARKET_ADDRESS is empty (local runs whose contracts are deployed at start), the
address is read once, at the first use in the process, and kept for the process's life:
a row changed later cannot move the worker. Production settings require MARKET_ADDRESS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

from django.conf import settings
from web3 import Web3
from web3.contract import Contract

from ledger import chain
from ledger.artifacts import load_artifact

logger = logging.getLogger(__name__)


class EscrowStatus(IntEnum):
    """AccessMarket.Status, in declaration order."""

    NONE = 0
    PAID = 1
    DELIVERED = 2
    RELEASED = 3
    REFUNDED = 4
    CANCELLED = 5


@dataclass(frozen=True)
class Escrow:
    """`AccessMarket.escrows(requestId)` as the chain answers it now."""

    buyer: str
    refund_after: int
    status: EscrowStatus
    fee_bps: int
    payee: str
    amount: int


class MarketMismatch(RuntimeError):
    """The database names another market than the worker's configuration."""


@lru_cache(maxsize=4)
def _pinned(configured: str, chain_id: int) -> str:
    if configured:
        return Web3.to_checksum_address(configured)
    from ledger.selectors.deployments import MARKET, deployment_get

    address = Web3.to_checksum_address(deployment_get(name=MARKET, chain_id=chain_id).address)
    logger.info("market address pinned from the deployment record: %s", address)
    return address


def market_address() -> str:
    """The market address the worker acts on (checksummed)."""
    return _pinned(settings.MARKET_ADDRESS, chain.configured_chain_id())


def pinned_chain_id() -> int:
    return chain.configured_chain_id()


def market() -> Contract:
    return chain.web3().eth.contract(
        address=Web3.to_checksum_address(market_address()), abi=load_artifact("AccessMarket")["abi"]
    )


def escrow_of(request_id: bytes) -> Escrow:
    buyer, refund_after, status, fee_bps, payee, amount = (
        market().functions.escrows(request_id).call()
    )
    return Escrow(
        buyer=str(buyer),
        refund_after=int(refund_after),
        status=EscrowStatus(int(status)),
        fee_bps=int(fee_bps),
        payee=str(payee),
        amount=int(amount),
    )


def market_paused() -> bool:
    return bool(market().functions.paused().call())


def check_deployment_agrees() -> None:
    """Raise MarketMismatch when the database's market differs from MARKET_ADDRESS.

    Called when a worker starts (config/celery.py). Nothing to compare before the
    contracts are deployed, or when no address is configured.
    """
    if not settings.MARKET_ADDRESS:
        if getattr(settings, "PROFILE", "") == "production":
            raise MarketMismatch("MARKET_ADDRESS must be set for a production worker")
        return
    from ledger.models import Deployment
    from ledger.selectors.deployments import MARKET

    rows = Deployment.objects.filter(name=MARKET)
    try:
        rows = rows.filter(chain_id=chain.configured_chain_id())
    except chain.UNREACHABLE:
        if settings.CHAIN_ID:
            rows = rows.filter(chain_id=int(settings.CHAIN_ID))
        # else: the chain is unknown while the node is away: any market row must agree
    row = rows.exclude(address__iexact=settings.MARKET_ADDRESS).first()
    if row is not None:
        chain_id = row.chain_id
        raise MarketMismatch(
            f"the database names market {row.address} on chain {chain_id}, but this worker is "
            f"configured with MARKET_ADDRESS={settings.MARKET_ADDRESS}: refusing to start"
        )
