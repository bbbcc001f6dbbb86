"""Where the contracts are."""

from __future__ import annotations

from web3.contract import Contract

from core.errors import ServiceUnavailable
from ledger import chain
from ledger.artifacts import load_artifact
from ledger.models import Deployment

# Deployments are named by role; the artifact gives the ABI. In production the token can be
# any ERC-20 (TOKEN_ADDRESS), read through GeneToken's ABI, which is ERC-20 + EIP-2612.
MARKET = "market"
TOKEN = "token"  # noqa: S105 - a deployment name, not a secret
ARTIFACT_OF = {MARKET: "AccessMarket", TOKEN: "GeneToken"}


def deployment_get(*, name: str, chain_id: int | None = None) -> Deployment:
    chain_id = chain_id if chain_id is not None else chain.configured_chain_id()
    deployment = Deployment.objects.filter(chain_id=chain_id, name=name).first()
    if deployment is None:
        raise ServiceUnavailable(
            f"{name} is not deployed on chain {chain_id}: run `manage.py deploy_contracts`"
        )
    return deployment


def deployed_contract(*, name: str) -> tuple[Deployment, Contract]:
    """The web3 contract object for a deployed contract, from its committed ABI."""
    deployment = deployment_get(name=name)
    contract = chain.web3().eth.contract(
        address=chain.web3().to_checksum_address(deployment.address),
        abi=load_artifact(ARTIFACT_OF[name])["abi"],
    )
    return deployment, contract
