"""The transaction sender: the one way operator transactions reach the chain.

- Idempotent per (action, key): asking twice returns the first transaction.
- Nonces come from one row per (chain, address) under a row lock, so concurrent senders in
  several workers get contiguous, distinct nonces (RELIABILITY.md 20).
- The signed raw transaction is stored before it is broadcast; a crash in between only
  leads to re-broadcasting the same bytes.
- web3's HTTP provider may retry eth_sendRawTransaction: "already known" and "nonce too
  low" can mean it was sent, so the hash is looked up before calling it an error.
- A transaction not mined within SENDER_STUCK_AFTER_S is replaced with the same nonce and
  fees raised by SENDER_FEE_BUMP_PERCENT (at least the 10% nodes require); only the
  lowest pending nonce of the operator is bumped (the later ones wait behind it, and
  bumping them burns fees for nothing), and never above SENDER_MAX_FEE_GWEI (RELIABILITY.md 26).
- A transaction the node refuses for its price is re-priced at the same nonce, never
  re-sent byte-identical forever; `nonce too low` for a hash the node does not know means
  the nonce went to another transaction: the nonce is taken from the node again and the
  transaction re-issued.
- The operator key signs only what the worker derives itself (RELIABILITY.md 23): a row
  stores the intent (the market function and its arguments) with a worker-only MAC; `to`
  is the market pinned in the worker's configuration, `data` is encoded from the intent
  by code at every signing, and only for the configured chain id. A row whose MAC fails
  (written by anyone but the worker) is never signed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import BlockNotFound, TimeExhausted, TransactionNotFound, Web3RPCError

from core.failpoints import failpoint
from ledger import chain, pinned
from ledger.integrity import row_mac, row_mac_valid
from ledger.models import OperatorNonce, OperatorTransaction
from ledger.operator import operator_account
from ledger.signals import operator_transaction_mined

logger = logging.getLogger(__name__)

Status = OperatorTransaction.Status
# Gas limits per market function, not estimated: an estimate runs the call against the
# node's state of the moment and fails outright on a would-be revert, where a mined revert
# is recorded, shown to staff and retried by settlement; it also costs an RPC round trip
# per send. Measured by bench/gas.py (deliver 32.6k, release 63k, refund 50k, cancel ~30k,
# anchor 26k), with room for tokens whose transfers cost more. Only gas used is paid.
GAS_LIMITS = {
    "deliver": 80_000,
    "cancel": 80_000,
    "release": 250_000,
    "refund": 200_000,
    "anchor": 80_000,
}
# Fees are read at most this often per process (a burst of sends shares one reading).
FEE_CACHE_S = 1.0
_fee_cache: dict[str, tuple[float, tuple[int, int]]] = {}
MAYBE_SENT = ("already known", "nonce too low", "known transaction", "already imported")
UNDERPRICED = (
    "underpriced",
    "fee too low",
    "less than block base fee",
    "max fee per gas less than",
    "feecap",
    "fee cap",
)
# The market functions the operator may call; nothing else is ever signed.
MARKET_FUNCTIONS = frozenset({"deliver", "release", "refund", "cancel", "anchor"})
GWEI = 10**9


class UnsignableTransaction(RuntimeError):
    """A row the worker will not sign: its MAC fails, or it asks for what code never
    builds (another function, another chain)."""


def _intent_fields(tx: OperatorTransaction) -> dict[str, object]:
    return {
        "chain_id": int(tx.chain_id),
        "action": tx.action,
        "key": tx.key,
        "function": tx.function,
        "args": tx.args,
        "sender": tx.sender.lower(),
        "nonce": int(tx.nonce),
    }


def _plain_args(args: Sequence[object]) -> list[object]:
    """Arguments as JSON: bytes as 0x-hex (decoded back by the ABI's types)."""
    return [Web3.to_hex(a) if isinstance(a, bytes | bytearray) else a for a in args]


def _calldata(tx: OperatorTransaction) -> tuple[str, str]:
    """(to, data) of the row's intent, built by code from the pinned market."""
    if tx.function not in MARKET_FUNCTIONS:
        raise UnsignableTransaction(f"{tx}: the operator never calls {tx.function!r}")
    if int(tx.chain_id) != pinned.pinned_chain_id():
        raise UnsignableTransaction(f"{tx}: chain {tx.chain_id} is not this worker's chain")
    market = pinned.market()
    return market.address, market.encode_abi(tx.function, args=list(tx.args))


def _cap_wei() -> int:
    return int(settings.SENDER_MAX_FEE_GWEI * GWEI)


def _fees(w3: Web3, *, fresh: bool = False) -> tuple[int, int]:
    """EIP-1559 fees: tip from the node, cap at twice the base fee plus tip, both capped
    at SENDER_MAX_FEE_GWEI."""
    now = time.monotonic()
    cached = _fee_cache.get(settings.CHAIN_RPC_URL)
    if not fresh and cached is not None and now - cached[0] < FEE_CACHE_S:
        return cached[1]
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    tip = int(w3.eth.max_priority_fee)
    cap = _cap_wei()
    fees = min(2 * base + tip, cap), min(tip, cap)
    _fee_cache[settings.CHAIN_RPC_URL] = (now, fees)
    return fees


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
    """Sign the row's intent; refuses a row whose MAC is not the worker's."""
    if tx.pk is not None and not row_mac_valid("operator_tx", _intent_fields(tx), tx.mac):
        raise UnsignableTransaction(f"{tx}: the row is not one the worker wrote")
    to, data = _calldata(tx)
    tx.to, tx.data = to, data
    signed = account.sign_transaction(
        {
            "chainId": pinned.pinned_chain_id(),
            "nonce": tx.nonce,
            "to": Web3.to_checksum_address(to),
            "data": HexStr(data),
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
    if function not in MARKET_FUNCTIONS:
        raise UnsignableTransaction(f"the operator never calls {function!r}")
    w3 = chain.web3()
    account = operator_account()
    chain_id = pinned.pinned_chain_id()
    market = pinned.market()
    data = market.encode_abi(function, args=list(args))
    gas = GAS_LIMITS[function]
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
                chain_id=chain_id,
                action=action,
                key=key,
                function=function,
                args=_plain_args(args),
                to=market.address,
                data=data,
                sender=account.address,
                nonce=_next_nonce(w3, chain_id, account.address),
                gas_limit=gas,
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=tip,
            )
            tx.mac = row_mac("operator_tx", _intent_fields(tx))
            tx.raw_tx, tx.tx_hash = _sign(account, tx)
            tx.tx_hashes = [tx.tx_hash]
            tx.save()
    except IntegrityError:
        # A concurrent request for the same (action, key) committed first.
        return OperatorTransaction.objects.get(action=action, key=key)
    failpoint(f"{action}.signed")  # stored and signed, not yet broadcast
    _broadcast(w3, tx)
    return tx


def _broadcast(w3: Web3, tx: OperatorTransaction, *, repriced: bool = False) -> None:
    try:
        w3.eth.send_raw_transaction(HexStr(tx.raw_tx))
    except (Web3RPCError, ValueError) as exc:
        message = str(exc).lower()
        if not any(marker in message for marker in MAYBE_SENT) or not _known(w3, tx):
            tx.attempts += 1
            tx.error = str(exc)[:2000]
            tx.save(update_fields=["attempts", "error", "updated_at"])
            logger.warning("broadcast of %s failed: %s", tx, exc)
            if any(marker in message for marker in UNDERPRICED):
                # Fees read a moment ago (or before a base-fee jump) were refused: sign the
                # same intent at the same nonce with fresh fees and send it once more now.
                if _reprice(w3, tx) and not repriced:
                    _broadcast(w3, tx, repriced=True)
            elif "nonce too low" in message:
                _reissue(w3, tx)
            return
    tx.status = Status.PENDING if tx.status == Status.SIGNED else tx.status
    tx.attempts += 1
    tx.broadcast_at = timezone.now()
    tx.error = ""
    tx.save(update_fields=["status", "attempts", "broadcast_at", "error", "updated_at"])


def _reprice(w3: Web3, tx: OperatorTransaction) -> bool:
    """Refused for its price: sign the same intent at the same nonce with today's fees
    (capped). True when new bytes were signed (the caller sends them); False when today's
    fees are no higher (at the cap: said once, loudly)."""
    _require_mac(tx)
    market_fee, market_tip = _fees(w3, fresh=True)
    if market_fee <= int(tx.max_fee_per_gas) and market_tip <= int(tx.max_priority_fee_per_gas):
        if int(tx.max_fee_per_gas) >= _cap_wei():
            _at_cap(tx)
        return False
    tx.max_fee_per_gas = Decimal(max(market_fee, int(tx.max_fee_per_gas)))
    tx.max_priority_fee_per_gas = Decimal(max(market_tip, int(tx.max_priority_fee_per_gas)))
    _resign(tx, status=Status.SIGNED)
    return True


def _reissue(w3: Web3, tx: OperatorTransaction) -> None:
    """`nonce too low` for a hash the node does not know: the nonce was used by another
    transaction of the key. Take the next nonce from the node and sign the intent again."""
    with transaction.atomic():
        row = OperatorNonce.objects.select_for_update().get(chain_id=tx.chain_id, address=tx.sender)
        pending = int(w3.eth.get_transaction_count(Web3.to_checksum_address(tx.sender), "pending"))
        row.next_nonce = max(row.next_nonce, pending)
        tx.nonce = row.next_nonce
        row.next_nonce += 1
        row.save(update_fields=["next_nonce"])
        tx.tx_hashes = []
        _resign(tx, status=Status.SIGNED)
    logger.warning("%s re-issued at nonce %s after `nonce too low`", tx, tx.nonce)


def _require_mac(tx: OperatorTransaction) -> None:
    if not row_mac_valid("operator_tx", _intent_fields(tx), tx.mac):
        raise UnsignableTransaction(f"{tx}: the row is not one the worker wrote")


def _resign(tx: OperatorTransaction, *, status: str) -> None:
    """Sign the intent anew after a checked change of fees or nonce."""
    tx.mac = row_mac("operator_tx", _intent_fields(tx))
    tx.raw_tx, tx.tx_hash = _sign(operator_account(), tx)
    tx.tx_hashes = [*tx.tx_hashes, tx.tx_hash]
    tx.status = status
    tx.save()


def _at_cap(tx: OperatorTransaction) -> None:
    """The fee cap is reached: say so once, loudly (shown on the staff chain page)."""
    note = f"fee cap SENDER_MAX_FEE_GWEI={settings.SENDER_MAX_FEE_GWEI} reached"
    if note not in tx.error:
        tx.error = f"{note}; {tx.error}"[:2000]
        tx.save(update_fields=["error", "updated_at"])
        logger.error("%s: %s", tx, note)


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
    market_fee, market_tip = _fees(w3, fresh=True)
    cap = _cap_wei()
    tip = max(int(tx.max_priority_fee_per_gas) * (100 + percent) // 100 + 1, market_tip)
    max_fee = max(int(tx.max_fee_per_gas) * (100 + percent) // 100 + 1, market_fee, tip)
    if max_fee > cap:  # a replacement must raise both fees by >= 10 %: past the cap, stop
        _at_cap(tx)
        return
    tx.max_fee_per_gas, tx.max_priority_fee_per_gas = Decimal(max_fee), Decimal(tip)
    tx.raw_tx, tx.tx_hash = _sign(operator_account(), tx)  # checks the row's MAC first
    tx.tx_hashes = [*tx.tx_hashes, tx.tx_hash]
    tx.save(
        update_fields=[
            "max_fee_per_gas",
            "max_priority_fee_per_gas",
            "raw_tx",
            "tx_hash",
            "tx_hashes",
            "to",
            "data",
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
    newest = recent.order_by("-receipt_block").first()
    if newest is not None and newest.receipt_block_hash:
        # Blocks link by hash: if the newest block holding one of ours is still the
        # canonical block of its height, so is every older one. One read per poll.
        canonical: str
        try:
            canonical = str(Web3.to_hex(w3.eth.get_block(int(newest.receipt_block or 0))["hash"]))
        except BlockNotFound:
            canonical = ""
        if canonical == newest.receipt_block_hash:
            return
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
        tx.receipt_block_hash = ""
        tx.save(
            update_fields=[
                "status",
                "receipt_block",
                "receipt_block_hash",
                "receipt_status",
                "gas_used",
                "updated_at",
            ]
        )
        _broadcast(w3, tx)


def _reissue_after_rotation(w3: Web3) -> None:
    """The operator key was rotated: what the old key signed and the chain has not mined
    would now revert (NotOperator). Each such intent is signed again by the new key, at
    the new address's next nonce, in the old nonce order."""
    current = operator_account().address
    waiting = OperatorTransaction.objects.filter(
        status__in=(Status.SIGNED, Status.PENDING)
    ).exclude(sender=current)
    for tx in waiting.order_by("nonce"):
        if _receipt(w3, tx) is not None:
            continue  # mined before the rotation: the poll records it
        try:
            _require_mac(tx)
        except UnsignableTransaction as exc:
            tx.status, tx.error = Status.FAILED, str(exc)[:2000]
            tx.save(update_fields=["status", "error", "updated_at"])
            logger.error("%s", exc)
            continue
        with transaction.atomic():
            tx.sender = current
            tx.nonce = _next_nonce(w3, int(tx.chain_id), current)
            tx.tx_hashes = []
            _resign(tx, status=Status.SIGNED)
        logger.warning("%s re-issued by the new operator %s", tx, current)


def operator_transactions_poll() -> int:
    """Broadcast what is signed, record receipts, replace what is stuck. Returns mined count."""
    w3 = chain.web3()
    mined = 0
    stuck_before = timezone.now() - timedelta(seconds=settings.SENDER_STUCK_AFTER_S)
    _reissue_after_rotation(w3)
    _recheck_mined(w3)
    for tx in OperatorTransaction.objects.filter(status=Status.SIGNED).order_by("nonce"):
        _broadcast(w3, tx)
    bumped: set[str] = set()  # senders whose lowest stuck nonce was handled this poll
    # A nonce at or above the sender's mined count cannot have a receipt: one read per
    # sender spares a receipt lookup per waiting transaction.
    mined_count: dict[str, int] = {}
    for tx in OperatorTransaction.objects.filter(status=Status.PENDING).order_by("nonce"):
        if tx.sender not in mined_count:
            mined_count[tx.sender] = int(
                w3.eth.get_transaction_count(Web3.to_checksum_address(tx.sender), "latest")
            )
        receipt = _receipt(w3, tx) if tx.nonce < mined_count[tx.sender] else None
        if receipt is None:
            if tx.sender in bumped:
                continue  # waits behind a lower nonce: bumping it would burn fees
            bumped.add(tx.sender)
            # The lowest waiting nonce, if the node lost it (dropped from its pool, or a
            # node restarted with an empty pool), goes out again at once: every later
            # nonce waits behind it.
            if not _known(w3, tx):
                _broadcast(w3, tx)  # the same bytes again
            elif tx.broadcast_at and tx.broadcast_at < stuck_before:
                try:
                    _bump(w3, tx)
                except UnsignableTransaction as exc:
                    tx.status, tx.error = Status.FAILED, str(exc)[:2000]
                    tx.save(update_fields=["status", "error", "updated_at"])
                    logger.error("%s", exc)
            continue
        with transaction.atomic():
            tx.status = Status.MINED if receipt["status"] == 1 else Status.FAILED
            tx.tx_hash = Web3.to_hex(receipt["transactionHash"])
            tx.receipt_block = int(receipt["blockNumber"])
            tx.receipt_block_hash = Web3.to_hex(receipt["blockHash"])
            tx.receipt_status = int(receipt["status"])
            tx.gas_used = int(receipt["gasUsed"])
            tx.error = "" if receipt["status"] == 1 else "reverted"
            tx.save()
            operator_transaction_mined.send(sender=OperatorTransaction, transaction=tx)
        mined += 1
    return mined
