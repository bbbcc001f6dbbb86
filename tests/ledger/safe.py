"""Safe smart-contract wallets (Safe 1.4.1, npm `@safe-global/safe-contracts`, compiled
unchanged with the pinned solc) on anvil, for tests.

Deployed as Safe{Wallet} deploys them: a `SafeProxy` in front of the `Safe` singleton,
`setup` with the owners, the threshold and the `CompatibilityFallbackHandler`, which gives
a Safe its EIP-1271 `isValidSignature`. Messages are signed as Safe{Wallet} and the Safe
protocol kit sign them: each owner signs the SafeMessage EIP-712 hash
(domain `{chainId, verifyingContract: safe}`, type `SafeMessage(bytes message)`) of the
32-byte hash being validated, and the 65-byte signatures are concatenated in ascending
order of owner address (Safe `checkNSignatures`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger.contracts.compiler import ARTIFACTS_DIR
from ledger.transactions import deploy, send_and_wait

SAFE_ARTIFACTS = ARTIFACTS_DIR / "test" / "safe"
ZERO = "0x0000000000000000000000000000000000000000"
CALL, DELEGATECALL = 0, 1


@cache
def safe_artifact(name: str) -> dict[str, Any]:
    return dict(json.loads((SAFE_ARTIFACTS / f"{name}.json").read_text()))


@dataclass(frozen=True)
class SafeSingletons:
    """The contracts every Safe on a chain shares."""

    safe: str
    fallback_handler: str
    sign_message_lib: str
    multi_send_call_only: str


def deploy_singletons(w3: Web3, deployer: LocalAccount) -> SafeSingletons:
    safe, _ = deploy(w3, deployer, safe_artifact("Safe"))
    handler, _ = deploy(w3, deployer, safe_artifact("CompatibilityFallbackHandler"))
    sign_lib, _ = deploy(w3, deployer, safe_artifact("SignMessageLib"))
    multi_send, _ = deploy(w3, deployer, safe_artifact("MultiSendCallOnly"))
    return SafeSingletons(
        safe=safe,
        fallback_handler=handler,
        sign_message_lib=sign_lib,
        multi_send_call_only=multi_send,
    )


@dataclass
class SafeWallet:
    w3: Web3
    contract: Contract
    owners: list[LocalAccount]
    singletons: SafeSingletons

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def message_hash(self, data: bytes) -> bytes:
        """What owners sign for `data`: the SafeMessage EIP-712 hash, made here as a wallet
        makes it (the handler's `getMessageHashForSafe` gives the same, see the tests)."""
        return bytes(Web3.keccak(b"\x19\x01" + self._domain_separator() + self._struct(data)))

    def sign_message(self, data: bytes, signers: list[LocalAccount]) -> bytes:
        """The Safe signature of `data` (EIP-1271 input) by `signers`, as Safe{Wallet} makes it."""
        typed = encode_typed_data(
            full_message={
                "types": {
                    "EIP712Domain": [
                        {"name": "chainId", "type": "uint256"},
                        {"name": "verifyingContract", "type": "address"},
                    ],
                    "SafeMessage": [{"name": "message", "type": "bytes"}],
                },
                "primaryType": "SafeMessage",
                "domain": {"chainId": self.w3.eth.chain_id, "verifyingContract": self.address},
                "message": {"message": data},
            }
        )
        ordered = sorted(signers, key=lambda owner: int(owner.address, 16))
        return b"".join(bytes(owner.sign_message(typed).signature) for owner in ordered)

    def execute(
        self,
        sender: LocalAccount,
        to: str,
        data: bytes | str,
        *,
        operation: int = CALL,
        signers: list[LocalAccount] | None = None,
    ) -> TxReceipt:
        """A Safe transaction (`execTransaction`) signed by `signers` (default: all owners),
        sent by `sender`, the way the Safe's transaction interface runs a call."""
        calldata = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
        nonce = self.contract.functions.nonce().call()
        tx_hash = self.contract.functions.getTransactionHash(
            to, 0, calldata, operation, 0, 0, 0, ZERO, ZERO, nonce
        ).call()
        ordered = sorted(signers or self.owners, key=lambda owner: int(owner.address, 16))
        signatures = b"".join(
            bytes(Account.unsafe_sign_hash(tx_hash, owner.key).signature) for owner in ordered
        )
        call = self.contract.functions.execTransaction(
            to, 0, calldata, operation, 0, 0, 0, ZERO, ZERO, signatures
        )
        receipt = send_and_wait(
            self.w3, sender, {"to": self.address, "data": call._encode_transaction_data()}
        )
        # Logs of the inner call (e.g. SignMessageLib's SignMsg) are not the Safe's events.
        success = self.contract.events.ExecutionSuccess().process_receipt(receipt, errors=DISCARD)
        assert success, "the Safe transaction's inner call failed (ExecutionFailure)"
        return receipt

    def execute_batch(self, sender: LocalAccount, calls: list[tuple[str, str]]) -> TxReceipt:
        """Several calls `(to, 0x-data)` in one Safe transaction, as Safe{Wallet}'s
        Transaction Builder sends a batch: a DELEGATECALL to `MultiSendCallOnly.multiSend`
        with each call packed as operation (1 byte), to (20), value (32), data length (32),
        data."""
        packed = b""
        for to, data in calls:
            body = bytes.fromhex(data.removeprefix("0x"))
            packed += (
                bytes([CALL])
                + bytes.fromhex(Web3.to_checksum_address(to)[2:])
                + (0).to_bytes(32, "big")
                + len(body).to_bytes(32, "big")
                + body
            )
        multi_send = self.w3.eth.contract(
            address=Web3.to_checksum_address(self.singletons.multi_send_call_only),
            abi=safe_artifact("MultiSendCallOnly")["abi"],
        )
        data = multi_send.functions.multiSend(packed)._encode_transaction_data()
        return self.execute(sender, multi_send.address, data, operation=DELEGATECALL)

    def _domain_separator(self) -> bytes:
        return bytes(self.contract.functions.domainSeparator().call())

    def _struct(self, data: bytes) -> bytes:
        typehash = Web3.keccak(text="SafeMessage(bytes message)")
        return bytes(Web3.keccak(typehash + Web3.keccak(data)))


def deploy_safe(
    w3: Web3,
    deployer: LocalAccount,
    singletons: SafeSingletons,
    owners: list[LocalAccount],
    threshold: int,
) -> SafeWallet:
    """A new Safe proxy owned by `owners`, `threshold` of whom must sign."""
    proxy, _ = deploy(w3, deployer, safe_artifact("SafeProxy"), singletons.safe)
    safe = w3.eth.contract(
        address=Web3.to_checksum_address(proxy), abi=safe_artifact("Safe")["abi"]
    )
    setup = safe.functions.setup(
        [owner.address for owner in owners],
        threshold,
        ZERO,
        b"",
        singletons.fallback_handler,
        ZERO,
        0,
        ZERO,
    )
    send_and_wait(w3, deployer, {"to": proxy, "data": setup._encode_transaction_data()})
    return SafeWallet(w3=w3, contract=safe, owners=owners, singletons=singletons)
