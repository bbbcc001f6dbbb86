"""EIP-712 vouchers of AccessMarket: what the operator signs when a request is approved
and what a wallet needs to pay it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3

DOMAIN_NAME = "AccessMarket"
DOMAIN_VERSION = "1"
VOUCHER_FIELDS = [
    {"name": "requestId", "type": "bytes32"},
    {"name": "buyer", "type": "address"},
    {"name": "payee", "type": "address"},
    {"name": "amount", "type": "uint256"},
    {"name": "validUntil", "type": "uint64"},
    {"name": "refundAfter", "type": "uint64"},
    {"name": "terms", "type": "bytes32"},
]
ZERO_TERMS = "0x" + "00" * 32


class VoucherError(ValueError):
    """A voucher field that cannot be what the contract takes (issue 14.5: parsers fail
    with their module's error, and the message never quotes the input)."""


@dataclass(frozen=True)
class Voucher:
    requestId: str  # noqa: N815 - the EIP-712 field names of the contract
    buyer: str
    payee: str
    amount: int
    validUntil: int  # noqa: N815
    refundAfter: int  # noqa: N815
    # keccak256 of what was bought (the listing's scope, the agreement's version): 0x-hex.
    terms: str = ZERO_TERMS

    def as_tuple(self) -> tuple[bytes, str, str, int, int, int, bytes]:
        """The struct argument of `pay` / `payWithPermit`."""
        return (
            request_id_bytes(self.requestId),
            Web3.to_checksum_address(self.buyer),
            Web3.to_checksum_address(self.payee),
            self.amount,
            self.validUntil,
            self.refundAfter,
            request_id_bytes(self.terms),
        )


def request_id_bytes(request_id: str) -> bytes:
    """A request id as the contract's bytes32 (from 0x-hex). Raises VoucherError."""
    try:
        raw = bytes.fromhex(request_id.removeprefix("0x"))
    except (ValueError, TypeError, AttributeError):
        raise VoucherError("A request id is 0x and 64 hex digits.") from None
    if len(raw) != 32:
        raise VoucherError(f"A request id is 32 bytes, not {len(raw)}.")
    return raw


def typed_data(*, chain_id: int, market: str, voucher: Voucher) -> dict[str, object]:
    """The full EIP-712 typed data, as wallets (`eth_signTypedData_v4`) take it."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Voucher": VOUCHER_FIELDS,
        },
        "primaryType": "Voucher",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": Web3.to_checksum_address(market),
        },
        "message": asdict(voucher),
    }


def sign(account: LocalAccount, *, chain_id: int, market: str, voucher: Voucher) -> str:
    data = typed_data(chain_id=chain_id, market=market, voucher=voucher)
    signed = account.sign_message(encode_typed_data(full_message=data))
    return Web3.to_hex(signed.signature)
