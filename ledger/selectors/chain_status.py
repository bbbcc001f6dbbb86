"""Chain status for `GET /api/v1/chain` and the admin's chain page."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from ledger import chain
from ledger.models import Deployment, IndexerCheckpoint, OperatorTransaction
from ledger.selectors.deployments import MARKET, TOKEN


@dataclass(frozen=True)
class ChainStatus:
    chain_id: int
    rpc_url: str
    token: str | None
    market: str | None
    head: int
    confirmed_block: int | None
    lag: int | None
    confirmations: int
    pending_operator_transactions: int


def chain_status() -> ChainStatus:
    chain_id = chain.configured_chain_id()
    head = chain.block_number()
    addresses = dict(
        Deployment.objects.filter(chain_id=chain_id, name__in=[MARKET, TOKEN]).values_list(
            "name", "address"
        )
    )
    checkpoint = IndexerCheckpoint.objects.filter(chain_id=chain_id).first()
    confirmed = checkpoint.block_number if checkpoint else None
    return ChainStatus(
        chain_id=chain_id,
        rpc_url=settings.CHAIN_PUBLIC_RPC_URL,
        token=addresses.get(TOKEN),
        market=addresses.get(MARKET),
        head=head,
        confirmed_block=confirmed,
        lag=head - confirmed if confirmed is not None else None,
        confirmations=settings.CONFIRMATIONS,
        pending_operator_transactions=OperatorTransaction.objects.filter(
            chain_id=chain_id,
            status__in=[OperatorTransaction.Status.SIGNED, OperatorTransaction.Status.PENDING],
        ).count(),
    )
