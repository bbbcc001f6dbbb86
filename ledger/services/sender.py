"""The transaction sender: the one way operator transactions reach the chain.

- Idempotent per (action, key): asking twice returns the first transaction.
- Nonces come from one row per (chain, address) under a row lock, so concurrent senders in
  several workers get contiguous, distinct nonces (RELIABILITY.md 20).
- The signed raw transaction is stored before it is broadcast; a crash in between only
  leads to re-broadcasting the same bytes.
- web3's HTTP provider may retry eth_sendRawTransaction: "already known" and "nonce too
  low" can mean it was sent, so the hash is looked up before calling it an error.
- A transaction not mined within SENDER_STUCK_AFTER_S is replaced with the same nonce and
  fees raised by SENDER_FEE_BUMP_PERCENT (at least the 10% nodes require).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import TimeExhausted, TransactionNotFound, Web3RPCError

from core.failpoints import failpoint
from ledger import chain
from ledger.models import OperatorNonce, OperatorTransaction
from ledger.operator import operator_account
from ledger.selectors.deployments import MARKET, deployed_contract
from ledger.signals import operator_transaction_mined

logger = logging.getLogger(__name__)

Status = OperatorTransaction.Status
GAS_MARGIN = Decimal("1.25")
MAYBE_SENT = ("already known", "nonce too low", "known transaction", "already imported")


def _fees(w3: Web3) -> tuple[int, int]:
    """EIP-1559 fees: tip from the node, cap at twice the base fee plus tip."""
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    tip = int(w3.eth.max_priority_fee)
    return 2 * base + tip, tip


def _next_nonce(w3: Web3, chain_id: int, address: str) -> int:
    """Allocate a nonce under a row lock; call inside a transaction."""
    row = (
        OperatorNonce.objects.select_for_update().filter(chain_id=chain_id, address=address).first()
    )
    if row is None:
        pending = int(w3.eth.get_transaction_count(Web3.to_checksum_address(address), "pending"))
        try:
            with transaction.atomic():
                OperatorNonce.objects.create(chain_id=chain_id, address=address, next_nonce=pending)
        except IntegrityError:
            pass  # another sender created it first
        row = OperatorNonce.objects.select_for_update().get(chain_id=chain_id, address=address)
    nonce = row.next_nonce
    row.next_nonce = nonce + 1
    row.save(update_fields=["next_nonce"])
    return nonce


def _sign(account: LocalAccount, tx: OperatorTransaction) -> tuple[str, str]:
    signed = account.sign_transaction(
        {
            "chainId": tx.chain_id,
            "nonce": tx.nonce,
            "to": Web3.to_checksum_address(tx.to),
            "data": HexStr(tx.data),
            "value": 0,
            "gas": tx.gas_limit,
            "type": 2,
            "maxFeePerGas": int(tx.max_fee_per_gas),
            "maxPriorityFeePerGas": int(tx.max_priority_fee_per_gas),
        }
    )
    return Web3.to_hex(signed.raw_transaction), Web3.to_hex(signed.hash)


def operator_transaction_send(
    *, action: str, key: str, function: str, args: Sequence[object]
) -> OperatorTransaction:
    """Send `AccessMarket.function(*args)` once for (action, key) and return its record."""
    existing = OperatorTransaction.objects.filter(action=action, key=key).first()
    if existing is not None:
        return existing
    w3 = chain.web3()
    account = operator_account()
    deployment, market = deployed_contract(name=MARKET)
    data = market.encode_abi(function, args=list(args))
    gas = int(
        Decimal(w3.eth.estimate_gas({"from": account.address, "to": market.address, "data": data}))
        * GAS_MARGIN
    )
    max_fee, tip = _fees(w3)
    try:
        with transaction.atomic():
            if (
                existing := OperatorTransaction.objects.filter(action=action, key=key)
                .select_for_update()
                .first()
            ) is not None:
                return existing
            tx = OperatorTransaction(
                chain_id=deployment.chain_id,
                action=action,
                key=key,
                to=market.address,
                data=data,
                sender=account.address,
                nonce=_next_nonce(w3, deployment.chain_id, account.address),
                gas_limit=gas,
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=tip,
            )
            tx.raw_tx, tx.tx_hash = _sign(account, tx)
            tx.tx_hashes = [tx.tx_hash]
            tx.save()
    except IntegrityError:
        # A concurrent request for the same (action, key) committed first.
        return OperatorTransaction.objects.get(action=action, key=key)
    failpoint(f"{action}.signed")  # stored and signed, not yet broadcast
    _broadcast(w3, tx)
    return tx


def _broadcast(w3: Web3, tx: OperatorTransaction) -> None:
    try:
        w3.eth.send_raw_transaction(HexStr(tx.raw_tx))
    except (Web3RPCError, ValueError) as exc:
        message = str(exc).lower()
        if not any(marker in message for marker in MAYBE_SENT) or not _known(w3, tx):
            tx.attempts += 1
            tx.error = str(exc)[:2000]
            tx.save(update_fields=["attempts", "error", "updated_at"])
            logger.warning("broadcast of %s failed: %s", tx, exc)
            return
    tx.status = Status.PENDING if tx.status == Status.SIGNED else tx.status
    tx.attempts += 1
    tx.broadcast_at = timezone.now()
    tx.error = ""
    tx.save(update_fields=["status", "attempts", "broadcast_at", "error", "updated_at"])


def _known(w3: Web3, tx: OperatorTransaction) -> bool:
    """Whether any hash of this transaction is known to the node (pending or mined)."""
    for tx_hash in tx.tx_hashes:
        try:
            w3.eth.get_transaction(tx_hash)
            return True
        except TransactionNotFound:
            continue
    return False


def _receipt(w3: Web3, tx: OperatorTransaction) -> dict | None:
    for tx_hash in reversed(tx.tx_hashes):
        try:
            return dict(w3.eth.get_transaction_receipt(tx_hash))
        except (TransactionNotFound, TimeExhausted):
            continue
    return None


def _bump(w3: Web3, tx: OperatorTransaction) -> None:
    """Replace a stuck transaction: same nonce, fees up by SENDER_FEE_BUMP_PERCENT."""
    percent = max(settings.SENDER_FEE_BUMP_PERCENT, 11)
    market_fee, market_tip = _fees(w3)
    tip = max(int(tx.max_priority_fee_per_gas) * (100 + percent) // 100 + 1, market_tip)
    max_fee = max(int(tx.max_fee_per_gas) * (100 + percent) // 100 + 1, market_fee, tip)
    tx.max_fee_per_gas, tx.max_priority_fee_per_gas = Decimal(max_fee), Decimal(tip)
    tx.raw_tx, tx.tx_hash = _sign(operator_account(), tx)
    tx.tx_hashes = [*tx.tx_hashes, tx.tx_hash]
    tx.save(
        update_fields=[
            "max_fee_per_gas",
            "max_priority_fee_per_gas",
            "raw_tx",
            "tx_hash",
            "tx_hashes",
            "updated_at",
        ]
    )
    logger.info("replacing stuck %s with %s", tx, tx.tx_hash)
    _broadcast(w3, tx)


def _recheck_mined(w3: Web3) -> None:
    """Send again what a reorg, or a node restarted from an older state, took back.

    A transaction mined in a block that is no longer canonical has no receipt any more;
    unless it goes out again, every later nonce of the operator waits behind the gap
    forever. Its stored bytes are broadcast again, in nonce order; the ones mined within
    the last SENDER_RECHECK_BLOCKS blocks are checked on each poll.
    """
    head = int(w3.eth.block_number)
    recent = OperatorTransaction.objects.filter(
        status__in=(Status.MINED, Status.FAILED),
        receipt_block__gt=head - settings.SENDER_RECHECK_BLOCKS,
    ).order_by("nonce")
    for tx in recent:
        if _receipt(w3, tx) is not None:
            continue
        logger.warning(
            "%s was mined in block %s, which is gone: sending again", tx, tx.receipt_block
        )
        tx.status, tx.receipt_block, tx.receipt_status, tx.gas_used = (
            Status.PENDING,
            None,
            None,
            None,
        )
        tx.save(
            update_fields=["status", "receipt_block", "receipt_status", "gas_used", "updated_at"]
        )
        _broadcast(w3, tx)


def operator_transactions_poll() -> int:
    """Broadcast what is signed, record receipts, replace what is stuck. Returns mined count."""
    w3 = chain.web3()
    mined = 0
    stuck_before = timezone.now() - timedelta(seconds=settings.SENDER_STUCK_AFTER_S)
    _recheck_mined(w3)
    for tx in OperatorTransaction.objects.filter(status=Status.SIGNED).order_by("nonce"):
        _broadcast(w3, tx)
    for tx in OperatorTransaction.objects.filter(status=Status.PENDING).order_by("nonce"):
        receipt = _receipt(w3, tx)
        if receipt is None:
            if tx.broadcast_at and tx.broadcast_at < stuck_before:
                if not _known(w3, tx):
                    _broadcast(w3, tx)  # dropped from the pool: send the same bytes again
                else:
                    _bump(w3, tx)
            continue
        with transaction.atomic():
            tx.status = Status.MINED if receipt["status"] == 1 else Status.FAILED
            tx.tx_hash = Web3.to_hex(receipt["transactionHash"])
            tx.receipt_block = int(receipt["blockNumber"])
            tx.receipt_status = int(receipt["status"])
            tx.gas_used = int(receipt["gasUsed"])
            tx.error = "" if receipt["status"] == 1 else "reverted"
            tx.save()
            operator_transaction_mined.send(sender=OperatorTransaction, transaction=tx)
        mined += 1
    return mined
