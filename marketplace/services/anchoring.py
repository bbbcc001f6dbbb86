"""Anchoring: Merkle roots of new audit entries and new dataset records go on chain, so
neither the log nor a listing can be rewritten later without the chain disagreeing.

The tree is SHA-256 over pairs of child hashes, the last node carried up unpaired; the
leaves are the entries' hashes (audit) or the records' hashes (datasets), in order.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max
from web3 import Web3

from ledger import chain
from ledger.models import ChainEvent
from ledger.selectors.deployments import MARKET, deployed_contract
from ledger.services.sender import operator_transaction_send
from marketplace.models import Anchor, AuditEntry, Dataset

logger = logging.getLogger(__name__)
BATCH = 10_000


def merkle_root(leaves: list[str]) -> str:
    """0x-hex root of hex leaves (a single leaf is its own root)."""
    if not leaves:
        raise ValueError("no leaves")
    level = [bytes.fromhex(leaf.removeprefix("0x")) for leaf in leaves]
    while len(level) > 1:
        level = [
            hashlib.sha256(level[i] + level[i + 1]).digest() if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return "0x" + level[0].hex()


def _audit_hashes(anchor: Anchor) -> list[str] | None:
    """The hashes of the audit entries first_seq..last_seq, in order; None when any is
    missing (sequence numbers come from the audit head's counter, without gaps)."""
    if anchor.first_seq is None or anchor.last_seq is None:
        return None
    hashes = list(
        AuditEntry.objects.filter(seq__gte=anchor.first_seq, seq__lte=anchor.last_seq)
        .order_by("seq")
        .values_list("hash", flat=True)
    )
    return hashes if len(hashes) == anchor.last_seq - anchor.first_seq + 1 else None


def recomputed_root(anchor: Anchor) -> str | None:
    """The root of what the anchor row says it covers, recomputed from the rows it names
    (audit entries first_seq..last_seq, or the listed datasets' record hashes); None when
    they are not all there."""
    if anchor.kind == Anchor.Kind.AUDIT:
        hashes = _audit_hashes(anchor)
        return merkle_root(hashes) if hashes else None
    current = {
        str(pk): digest
        for pk, digest in Dataset.objects.filter(pk__in=anchor.datasets).values_list(
            "pk", "record_hash"
        )
    }
    # Each record must be the current record of the dataset beside it (an edited listing
    # gets a new record, anchored by a later root).
    if not anchor.records or len(anchor.records) != len(anchor.datasets):
        return None
    if any(
        current.get(str(pk)) != digest
        for pk, digest in zip(anchor.datasets, anchor.records, strict=True)
    ):
        return None
    return merkle_root(list(anchor.records))


def _send(anchor: Anchor) -> None:
    """Anchor the row's root, only if the worker recomputes the same root itself: a row
    the web tier wrote with any other root is never signed (settlement review, finding 3)."""
    if recomputed_root(anchor) != anchor.root:
        # Not the worker's row: removed, so the entries it claims are anchored next run.
        logger.error("anchor %s: the root does not match what it covers; removed", anchor.pk)
        Anchor.objects.filter(pk=anchor.pk, tx_hash="").delete()
        return
    operator_transaction_send(
        action="anchor",
        key=anchor.root,
        function="anchor",
        args=[bytes.fromhex(anchor.root[2:]), anchor.kind],
    )


def anchors_create() -> list[Anchor]:
    """Periodic (worker): anchor the audit entries and dataset records not anchored yet."""
    made: list[Anchor] = []
    with transaction.atomic():
        done = (
            Anchor.objects.filter(kind=Anchor.Kind.AUDIT).aggregate(last=Max("last_seq"))["last"]
            or 0
        )
        entries = list(
            AuditEntry.objects.filter(seq__gt=done)
            .order_by("seq")
            .values_list("seq", "hash")[:BATCH]
        )
        if entries:
            made.append(
                Anchor.objects.create(
                    kind=Anchor.Kind.AUDIT,
                    root=merkle_root([h for _, h in entries]),
                    first_seq=entries[0][0],
                    last_seq=entries[-1][0],
                )
            )
        anchored = {r for a in Anchor.objects.filter(kind=Anchor.Kind.DATASETS) for r in a.records}
        datasets = [
            (str(pk), digest)
            for pk, digest in Dataset.objects.order_by("created_at").values_list(
                "pk", "record_hash"
            )
            if digest not in anchored
        ][:BATCH]
        if datasets:
            made.append(
                Anchor.objects.create(
                    kind=Anchor.Kind.DATASETS,
                    root=merkle_root([h for _, h in datasets]),
                    datasets=[pk for pk, _ in datasets],
                    records=[digest for _, digest in datasets],
                )
            )
    # Every root without a confirmed transaction, not only the new ones: a send that met a
    # dead chain node is made now (sending is idempotent per root).
    for anchor in Anchor.objects.filter(tx_hash="").order_by("created_at"):
        _send(anchor)
    return made


def anchor_confirm(*, event: ChainEvent) -> Anchor | None:
    """A confirmed `Anchored` event: record where the root is; datasets show the tx."""
    anchor = Anchor.objects.select_for_update().filter(root=event.args["root"]).first()
    if anchor is None:
        return None
    anchor.tx_hash, anchor.block_number = event.tx_hash, event.block_number
    anchor.save(update_fields=["tx_hash", "block_number"])
    if anchor.kind == Anchor.Kind.DATASETS:
        Dataset.objects.filter(pk__in=anchor.datasets, record_hash__in=anchor.records).update(
            anchor_tx=event.tx_hash, anchored_at=anchor.created_at
        )
    return anchor


def anchor_unconfirm(*, event: ChainEvent) -> Anchor | None:
    """A reorg took the `Anchored` log back: the root waits for its transaction again."""
    anchor = Anchor.objects.select_for_update().filter(root=event.args["root"]).first()
    if anchor is None or anchor.tx_hash != event.tx_hash:
        return anchor
    anchor.tx_hash, anchor.block_number = "", None
    anchor.save(update_fields=["tx_hash", "block_number"])
    if anchor.kind == Anchor.Kind.DATASETS:
        Dataset.objects.filter(pk__in=anchor.datasets, anchor_tx=event.tx_hash).update(
            anchor_tx="", anchored_at=None
        )
    return anchor


@dataclass(frozen=True)
class AnchorCheck:
    ok: bool
    checked: int
    problem: str = ""


def anchors_verify() -> AnchorCheck:
    """Every confirmed audit anchor: its root recomputed from the entries now in the
    database, and found in an `Anchored` log of the market on the chain itself."""
    anchors = list(Anchor.objects.exclude(tx_hash="").order_by("created_at"))
    if not anchors:
        return AnchorCheck(True, 0)
    _, market = deployed_contract(name=MARKET)
    w3 = chain.web3()
    checked = 0
    for anchor in anchors:
        if anchor.kind == Anchor.Kind.AUDIT:
            hashes = _audit_hashes(anchor)
            if not hashes or merkle_root(hashes) != anchor.root:
                return AnchorCheck(
                    False,
                    checked,
                    f"entries #{anchor.first_seq} to #{anchor.last_seq} "
                    "no longer match the root anchored on chain",
                )
        topic = Web3.to_hex(Web3.keccak(text=market.events.Anchored().signature))
        logs = w3.eth.get_logs(
            {
                "address": market.address,
                "fromBlock": anchor.block_number or 0,
                "toBlock": anchor.block_number or 0,
                "topics": [topic, anchor.root],
            }
        )
        if not logs:
            return AnchorCheck(False, checked, f"root {anchor.root} is not on the chain")
        checked += 1
    return AnchorCheck(True, checked)
