"""A deployed market on a private anvil for contract tests, with helpers to sign vouchers,
send transactions and expect custom-error reverts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from ledger import permits, vouchers
from ledger.artifacts import load_artifact
from ledger.contracts.compiler import ARTIFACTS_DIR
from ledger.transactions import deploy

GENE = 10**18
FEE_BPS = 250


def mock_artifact(name: str) -> dict[str, Any]:
    import json

    return dict(json.loads((ARTIFACTS_DIR / "test" / f"{name}.json").read_text()))


@dataclass
class MarketEnv:
    w3: Web3
    accounts: list[LocalAccount]
    token: Contract
    market: Contract
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def owner(self) -> LocalAccount:
        return self.accounts[0]

    @property
    def operator(self) -> LocalAccount:
        return self.accounts[1]

    @property
    def treasury(self) -> LocalAccount:
        return self.accounts[2]

    @property
    def buyer(self) -> LocalAccount:
        return self.accounts[3]

    @property
    def payee(self) -> LocalAccount:
        return self.accounts[4]

    @property
    def other(self) -> LocalAccount:
        return self.accounts[5]

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def voucher(self, **overrides: Any) -> vouchers.Voucher:
        self.counter[0] += 1
        fields: dict[str, Any] = {
            "requestId": Web3.to_hex(Web3.keccak(text=f"request-{self.counter[0]}-{time.time()}")),
            "buyer": self.buyer.address,
            "payee": self.payee.address,
            "amount": 100 * GENE,
            "validUntil": self.now() + 3600,
            "refundAfter": self.now() + 7 * 86400,
        }
        fields.update(overrides)
        return vouchers.Voucher(**fields)

    def sign(self, voucher: vouchers.Voucher, signer: LocalAccount | None = None) -> str:
        return vouchers.sign(
            signer or self.operator,
            chain_id=self.w3.eth.chain_id,
            market=self.market.address,
            voucher=voucher,
        )

    def send(self, account: LocalAccount, call: Any) -> dict[str, Any]:
        """Send a contract call from `account`; returns the receipt (raises on revert)."""
        tx = call.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            }
        )
        signed = account.sign_transaction(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(signed.raw_transaction), timeout=30
        )
        assert receipt["status"] == 1
        return dict(receipt)

    def approve(self, account: LocalAccount, amount: int, token: Contract | None = None) -> None:
        self.send(account, (token or self.token).functions.approve(self.market.address, amount))

    def pay(
        self,
        voucher: vouchers.Voucher,
        *,
        sender: LocalAccount | None = None,
        signer: LocalAccount | None = None,
    ) -> dict[str, Any]:
        return self.send(
            sender or self.buyer,
            self.market.functions.pay(voucher.as_tuple(), self.sign(voucher, signer)),
        )

    def deliver(self, voucher: vouchers.Voucher, market: Contract | None = None) -> dict[str, Any]:
        """The operator records the delivery (ends the buyer's refund)."""
        return self.send(
            self.operator,
            (market or self.market).functions.deliver(vouchers.request_id_bytes(voucher.requestId)),
        )

    def balance(self, address: str, token: Contract | None = None) -> int:
        return int((token or self.token).functions.balanceOf(address).call())

    def permit(self, owner: LocalAccount, amount: int, deadline: int) -> tuple[int, bytes, bytes]:
        """(v, r, s) of an EIP-2612 permit letting the market spend `amount` of `owner`'s."""
        data = permits.permit_typed_data(
            chain_id=self.w3.eth.chain_id,
            token=self.token.address,
            token_name=self.token.functions.name().call(),
            owner=owner.address,
            spender=self.market.address,
            value=amount,
            nonce=self.token.functions.nonces(owner.address).call(),
            deadline=deadline,
        )
        signed = owner.sign_message(encode_typed_data(full_message=data))
        return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")

    def increase_time(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def error_selector(signature: str) -> str:
    return Web3.to_hex(Web3.keccak(text=signature)[:4])


def reverts_with(signature: str, action: Callable[[], object]) -> None:
    """Assert that `action` reverts with the custom error `signature`, e.g. "NotBuyer()"."""
    try:
        action()
    except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
        text = str(getattr(exc, "data", "")) + " " + str(exc)
        assert error_selector(signature)[2:] in text, f"expected {signature}, got {text}"
        return
    raise AssertionError(f"expected a revert with {signature}")


def deploy_market(
    w3: Web3,
    accounts: list[LocalAccount],
    token_artifact: dict[str, Any],
    token_args: tuple[object, ...] = (),
) -> MarketEnv:
    owner, operator, treasury = accounts[:3]
    token_address, _ = deploy(w3, owner, token_artifact, *token_args)
    market_address, _ = deploy(
        w3,
        owner,
        dict(load_artifact("AccessMarket")),
        token_address,
        operator.address,
        treasury.address,
        FEE_BPS,
        owner.address,
    )
    token = w3.eth.contract(
        address=Web3.to_checksum_address(token_address), abi=token_artifact["abi"]
    )
    market = w3.eth.contract(
        address=Web3.to_checksum_address(market_address), abi=load_artifact("AccessMarket")["abi"]
    )
    env = MarketEnv(w3, accounts, token, market)
    for holder in accounts[3:8]:
        env.send(owner, token.functions.mint(holder.address, 1_000_000 * GENE))
    return env
