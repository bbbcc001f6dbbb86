"""Sending a transaction from a key and waiting for its receipt: for deployment and test
set-up only. Operator transactions go through `ledger.services.sender`, never here."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxReceipt

RECEIPT_TIMEOUT_S = 120


class TransactionFailed(RuntimeError):
    pass


def send_and_wait(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> TxReceipt:
    tx = {
        "from": account.address,
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        **tx,
    }
    tx.setdefault("gas", int(w3.eth.estimate_gas(tx) * 1.2))  # type: ignore[arg-type]
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    tx.setdefault("maxPriorityFeePerGas", int(w3.eth.max_priority_fee))
    tx.setdefault("maxFeePerGas", 2 * base + tx["maxPriorityFeePerGas"])
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), timeout=RECEIPT_TIMEOUT_S
    )
    if receipt["status"] != 1:
        raise TransactionFailed(f"transaction {Web3.to_hex(receipt['transactionHash'])} reverted")
    return receipt


def deploy(
    w3: Web3, account: LocalAccount, artifact: dict[str, Any], *args: object
) -> tuple[str, TxReceipt]:
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = contract.constructor(*args).build_transaction({"from": account.address})
    receipt = send_and_wait(w3, account, {"data": tx["data"]})
    address = receipt["contractAddress"]
    if address is None:
        raise TransactionFailed("deployment returned no contract address")
    return str(address), receipt
