"""Deploying GeneToken and AccessMarket and recording where they are."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger import chain
from ledger.artifacts import load_artifact
from ledger.models import ChainEvent, Deployment, IndexedBlock, IndexerCheckpoint
from ledger.selectors.deployments import MARKET, TOKEN
from ledger.transactions import deploy, send_and_wait

GENE = 10**18


@dataclass(frozen=True)
class DeployResult:
    chain_id: int
    token: Deployment
    market: Deployment
    created: bool


def deployed_on_chain(deployment: Deployment) -> bool:
    """Whether code is still at the recorded address (a restarted local chain forgets)."""
    w3 = chain.web3()
    return len(w3.eth.get_code(Web3.to_checksum_address(deployment.address))) > 0


def contracts_deploy(
    *,
    deployer: LocalAccount,
    operator: str,
    treasury: str,
    fee_bps: int,
    token_address: str | None = None,
    mint: dict[str, int] | None = None,
    force: bool = False,
) -> DeployResult:
    """Deploy the market (and GeneToken unless `token_address` names any ERC-20).

    Idempotent: when both contracts are recorded for this chain and still have code, it
    returns them; pass `force` to deploy anew. A fresh deployment resets this chain's
    indexer state, whose events belonged to the old contracts.
    """
    w3 = chain.web3()
    chain_id = int(w3.eth.chain_id)
    existing = {d.name: d for d in Deployment.objects.filter(chain_id=chain_id)}
    if (
        not force
        and {TOKEN, MARKET} <= set(existing)
        and all(deployed_on_chain(existing[name]) for name in (TOKEN, MARKET))
    ):
        return DeployResult(chain_id, existing[TOKEN], existing[MARKET], created=False)

    token: str
    if token_address:
        token, token_block, token_tx = Web3.to_checksum_address(token_address), 0, ""
    else:
        token, receipt = deploy(w3, deployer, dict(load_artifact("GeneToken")), deployer.address)
        token_block, token_tx = int(receipt["blockNumber"]), Web3.to_hex(receipt["transactionHash"])
    market, receipt = deploy(
        w3,
        deployer,
        dict(load_artifact("AccessMarket")),
        token,
        Web3.to_checksum_address(operator),
        Web3.to_checksum_address(treasury),
        fee_bps,
        deployer.address,
    )
    if mint and not token_address:
        contract = w3.eth.contract(
            address=Web3.to_checksum_address(token), abi=load_artifact("GeneToken")["abi"]
        )
        for holder, amount in mint.items():
            data = contract.encode_abi("mint", args=[Web3.to_checksum_address(holder), amount])
            send_and_wait(w3, deployer, {"to": contract.address, "data": data})
    with transaction.atomic():
        ChainEvent.objects.filter(chain_id=chain_id).delete()
        IndexedBlock.objects.filter(chain_id=chain_id).delete()
        IndexerCheckpoint.objects.filter(chain_id=chain_id).delete()
        token_row, _ = Deployment.objects.update_or_create(
            chain_id=chain_id,
            name=TOKEN,
            defaults={"address": token, "block_number": token_block, "tx_hash": token_tx},
        )
        market_row, _ = Deployment.objects.update_or_create(
            chain_id=chain_id,
            name=MARKET,
            defaults={
                "address": market,
                "block_number": int(receipt["blockNumber"]),
                "tx_hash": Web3.to_hex(receipt["transactionHash"]),
            },
        )
    return DeployResult(chain_id, token_row, market_row, created=True)
