"""The event indexer: the one reader of the market's logs (CONVENTIONS "Chain code").

Each run reads `Paid`, `Released`, `Refunded` and `Anchored` logs up to head minus
CONFIRMATIONS in bounded block ranges (RELIABILITY.md 19). Per range, one database
transaction inserts the new events (unique on chain id, tx hash, log index: overlapping or
repeated ranges insert nothing twice), tells receivers (`chain_event_applied`), and moves
the checkpoint, so a crash anywhere leaves either all of a range or none of it.

Before reading, the checkpoint's stored hash is compared with the canonical chain; when it
differs, the indexer rewinds to the newest stored block that is still canonical (the common
ancestor), reverting the events above it (`chain_event_reverted`), and replays from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, Web3RPCError

from ledger import chain, pinned
from ledger.models import ChainEvent, IndexedBlock, IndexerCheckpoint
from ledger.selectors.deployments import MARKET, deployment_get
from ledger.signals import chain_event_applied, chain_event_reverted

logger = logging.getLogger(__name__)

EVENT_NAMES = (
    "Paid",
    "Delivered",
    "Cancelled",
    "Released",
    "Refunded",
    "Anchored",
    "Paused",
    "Unpaused",
)
# What providers answer when an eth_getLogs range is over their cap (many hosted RPCs cap
# at 1,000 blocks or 10,000 logs): the range is halved and the run goes on.
RANGE_REFUSED = (
    "block range",
    "range too large",
    "range is too large",
    "exceed maximum block range",
    "max block range",
    "query returned more than",
    "too many blocks",
    "limit exceeded",
    "response size exceeded",
    "is limited to",
)
# The largest range each chain accepted, learned per process (halved on each refusal).
_learned_range: dict[int, int] = {}
# Blocks kept for reorg detection below the checkpoint; far deeper than any reorg.
KEEP_BLOCKS = 2048


@dataclass(frozen=True)
class IndexerRun:
    head: int
    confirmed: int
    checkpoint: int
    applied: int
    reverted: int


def _hex(value: object) -> str:
    return Web3.to_hex(HexBytes(value))  # type: ignore[arg-type]


def _plain(value: object) -> object:
    """JSON-safe event arguments: bytes as 0x-hex, integers as decimal strings."""
    if isinstance(value, bytes | bytearray):
        return _hex(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    return value


def _block(w3: Web3, number: int) -> Any:
    return w3.eth.get_block(number)


def _canonical_hash(w3: Web3, number: int) -> str | None:
    """The hash of the canonical block `number`, or None when the chain is shorter (a node
    restarted from an older state has lost the blocks above its head)."""
    try:
        return _hex(_block(w3, number)["hash"])
    except BlockNotFound:
        return None


def _checkpoint(w3: Web3, chain_id: int, start_block: int) -> IndexerCheckpoint:
    existing = IndexerCheckpoint.objects.filter(chain_id=chain_id).first()
    if existing is not None:
        return existing
    origin = max(start_block - 1, 0)
    block = _block(w3, origin)
    checkpoint, _ = IndexerCheckpoint.objects.get_or_create(
        chain_id=chain_id, defaults={"block_number": origin, "block_hash": _hex(block["hash"])}
    )
    return checkpoint


def _common_ancestor(w3: Web3, chain_id: int, below: int, floor: int) -> tuple[int, str]:
    """The newest stored block at or below `below` whose hash is still canonical."""
    stored = IndexedBlock.objects.filter(chain_id=chain_id, number__lte=below).order_by("-number")
    for block in stored.iterator():
        if _canonical_hash(w3, block.number) == block.hash:
            return block.number, block.hash
    origin = max(floor - 1, 0)
    return origin, _hex(_block(w3, origin)["hash"])


def _rewind(w3: Web3, chain_id: int, checkpoint: IndexerCheckpoint, floor: int) -> int:
    number, block_hash = _common_ancestor(w3, chain_id, checkpoint.block_number, floor)
    logger.warning(
        "reorg below block %s: rewinding to common ancestor %s", checkpoint.block_number, number
    )
    with transaction.atomic():
        locked = IndexerCheckpoint.objects.select_for_update().get(chain_id=chain_id)
        orphaned = list(
            ChainEvent.objects.filter(chain_id=chain_id, block_number__gt=number).order_by(
                "-block_number", "-tx_index", "-log_index"
            )
        )
        for event in orphaned:
            chain_event_reverted.send(sender=ChainEvent, event=event)
        ChainEvent.objects.filter(pk__in=[event.pk for event in orphaned]).delete()
        IndexedBlock.objects.filter(chain_id=chain_id, number__gt=number).delete()
        locked.block_number, locked.block_hash = number, block_hash
        locked.save(update_fields=["block_number", "block_hash", "updated_at"])
    checkpoint.block_number, checkpoint.block_hash = number, block_hash
    return len(orphaned)


def _decoders(contract: Contract) -> dict[str, Any]:
    return {
        _hex(Web3.keccak(text=contract.events[name].signature)): contract.events[name]
        for name in EVENT_NAMES
    }


def _apply_range(
    w3: Web3, contract: Contract, chain_id: int, checkpoint: IndexerCheckpoint, end: int
) -> int:
    start = checkpoint.block_number + 1
    decoders = _decoders(contract)
    logs = w3.eth.get_logs(
        {
            "address": contract.address,
            "fromBlock": start,
            "toBlock": end,
            "topics": [list(decoders)],
        }
    )
    logs = sorted(
        logs, key=lambda log: (log["blockNumber"], log["transactionIndex"], log["logIndex"])
    )
    end_block = _block(w3, end)
    _check_canonical(w3, logs)
    with transaction.atomic():
        locked = IndexerCheckpoint.objects.select_for_update().get(chain_id=chain_id)
        if locked.block_number != checkpoint.block_number:
            logger.info("another indexer moved the checkpoint; this run stops")
            return 0
        keys = {(_hex(log["transactionHash"]), int(log["logIndex"])) for log in logs}
        known = set(
            ChainEvent.objects.filter(
                chain_id=chain_id, tx_hash__in={tx for tx, _ in keys}
            ).values_list("tx_hash", "log_index")
        )
        fresh: list[ChainEvent] = []
        blocks: dict[int, str] = {}
        for log in logs:
            key = (_hex(log["transactionHash"]), int(log["logIndex"]))
            if key in known:
                continue
            known.add(key)
            decoded = decoders[_hex(log["topics"][0])].process_log(log)
            args = {name: _plain(value) for name, value in decoded["args"].items()}
            fresh.append(
                ChainEvent(
                    chain_id=chain_id,
                    tx_hash=key[0],
                    log_index=key[1],
                    block_number=int(log["blockNumber"]),
                    block_hash=_hex(log["blockHash"]),
                    tx_index=int(log["transactionIndex"]),
                    contract=contract.address,
                    name=decoded["event"],
                    args=args,
                    request_id=str(args.get("requestId", "")),
                )
            )
            blocks[int(log["blockNumber"])] = _hex(log["blockHash"])
        ChainEvent.objects.bulk_create(fresh)
        _remember_blocks(chain_id, blocks, end, end_block)
        for event in fresh:
            chain_event_applied.send(sender=ChainEvent, event=event)
        locked.block_number, locked.block_hash = end, _hex(end_block["hash"])
        locked.save(update_fields=["block_number", "block_hash", "updated_at"])
    checkpoint.block_number, checkpoint.block_hash = locked.block_number, locked.block_hash
    return len(fresh)


class OrphanedLogs(RuntimeError):
    """A log's block is not the canonical block of its height: a reorg (or a lagging
    backend behind a load balancer) between the reads. Nothing of the range is applied;
    the next run starts from the same checkpoint."""


def _check_canonical(w3: Web3, logs: list[Any]) -> None:
    """Every log's `blockHash` must be the canonical hash of its block number now, read
    separately from `eth_getLogs` (RELIABILITY.md 25): logs and the checkpoint come from
    different RPC reads and can disagree across a reorg."""
    seen: dict[int, str] = {}
    for log in logs:
        number = int(log["blockNumber"])
        if number not in seen:
            seen[number] = _canonical_hash(w3, number) or ""
        if _hex(log["blockHash"]) != seen[number]:
            raise OrphanedLogs(
                f"log {_hex(log['transactionHash'])}#{log['logIndex']} is in block "
                f"{_hex(log['blockHash'])[:10]}…, not the canonical block {number}"
            )


def _range_refused(exc: Exception) -> bool:
    message = str(exc).lower()
    return any(marker in message for marker in RANGE_REFUSED)


def _remember_blocks(chain_id: int, blocks: dict[int, str], end: int, end_block: Any) -> None:
    """Store the hash of every block that held an event, and of the range's last block
    with its parent hash; the ancestor search after a reorg walks these."""
    rows = [
        IndexedBlock(chain_id=chain_id, number=number, hash=block_hash)
        for number, block_hash in blocks.items()
        if number != end
    ]
    rows.append(
        IndexedBlock(
            chain_id=chain_id,
            number=end,
            hash=_hex(end_block["hash"]),
            parent_hash=_hex(end_block["parentHash"]),
        )
    )
    IndexedBlock.objects.bulk_create(rows, ignore_conflicts=True)
    IndexedBlock.objects.filter(chain_id=chain_id, number__lt=end - KEEP_BLOCKS).delete()


def indexer_run(*, max_ranges: int = 100) -> IndexerRun:
    """Apply confirmed events up to head minus CONFIRMATIONS (at most `max_ranges` ranges)."""
    w3 = chain.web3()
    chain_id = pinned.pinned_chain_id()
    # Logs are read from the market pinned in the worker's configuration; a deployment row
    # naming another contract (one that merely emits `Paid`) stops the indexer loudly.
    contract = pinned.market()
    deployment = deployment_get(name=MARKET, chain_id=chain_id)
    if deployment.address.lower() != contract.address.lower():
        raise pinned.MarketMismatch(
            f"the deployment record names {deployment.address}, the worker's market is "
            f"{contract.address}: not indexing"
        )
    head = int(w3.eth.block_number)
    confirmed = head - settings.CONFIRMATIONS
    checkpoint = _checkpoint(w3, chain_id, deployment.block_number)
    reverted = 0
    # A checkpoint above `confirmed` whose block is still canonical (a node restarted from
    # a slightly older state, CONFIRMATIONS raised) has nothing to take back: by the hash
    # chain everything below it is canonical too. The indexer waits for the head instead.
    if _canonical_hash(w3, checkpoint.block_number) != checkpoint.block_hash:
        reverted = _rewind(w3, chain_id, checkpoint, deployment.block_number)
    applied = 0
    span = min(settings.INDEXER_MAX_BLOCK_RANGE, _learned_range.get(chain_id, 1 << 62))
    for _ in range(max_ranges):
        if checkpoint.block_number >= confirmed:
            break
        end = min(checkpoint.block_number + span, confirmed)
        try:
            applied += _apply_range(w3, contract, chain_id, checkpoint, end)
        except (Web3RPCError, ValueError) as exc:
            if not _range_refused(exc) or span == 1:
                raise
            span = max(span // 2, 1)
            _learned_range[chain_id] = span
            logger.info("the node refused a log range; trying %s blocks at a time", span)
        except OrphanedLogs as exc:
            logger.warning("range %s-%s not applied: %s", checkpoint.block_number + 1, end, exc)
            break
    return IndexerRun(
        head=head,
        confirmed=confirmed,
        checkpoint=checkpoint.block_number,
        applied=applied,
        reverted=reverted,
    )
