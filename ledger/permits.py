"""EIP-2612 permits: the typed data a token holder signs so `payWithPermit` can approve
and pay in one transaction (used by wallets in the browser, and by tests and benchmarks)."""

from __future__ import annotations

from web3 import Web3

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
PERMIT_FIELDS = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


def permit_typed_data(
    *,
    chain_id: int,
    token: str,
    token_name: str,
    owner: str,
    spender: str,
    value: int,
    nonce: int,
    deadline: int,
    version: str = "1",
) -> dict[str, object]:
    """`eth_signTypedData_v4` input for an OpenZeppelin ERC20Permit token."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Permit": PERMIT_FIELDS},
        "primaryType": "Permit",
        "domain": {
            "name": token_name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": Web3.to_checksum_address(token),
        },
        "message": {
            "owner": Web3.to_checksum_address(owner),
            "spender": Web3.to_checksum_address(spender),
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    }
