"""Appending to the audit log and checking it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from marketplace.models import AuditEntry, AuditHead
from marketplace.models.audit import GENESIS_HASH


def canonical(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash covers: sorted keys, no spaces, ASCII only, so control
    characters in user input are escaped (\\n, \\r) and cannot forge log lines."""
    body = {
        "seq": entry.seq,
        "prev_hash": entry.prev_hash,
        "created_at": entry.created_at.isoformat(),
        "actor_id": entry.actor_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "data": entry.data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def audit_append(
    *,
    action: str,
    actor: Any = None,
    object_type: str = "",
    object_id: object = "",
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry; runs inside the caller's transaction, so the entry commits or
    rolls back with the change it records."""
    with transaction.atomic():
        head, _ = AuditHead.objects.select_for_update().get_or_create(id=1)
        entry = AuditEntry(
            seq=head.last_seq + 1,
            prev_hash=head.last_hash,
            created_at=timezone.now(),
            actor_id=str(getattr(actor, "pk", "") or ""),
            actor_label=str(getattr(actor, "username", "") or ("system" if actor is None else "")),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            # Through JSON once, so what is hashed is what the database gives back.
            data=json.loads(json.dumps(data or {}, default=str)),
        )
        entry.hash = entry_hash(entry)
        entry.save(force_insert=True)
        AuditHead.objects.filter(id=1).update(last_seq=entry.seq, last_hash=entry.hash)
    return entry


@dataclass(frozen=True)
class AuditCheck:
    ok: bool
    checked: int
    first_broken: int | None = None
    reason: str = ""


def audit_verify() -> AuditCheck:
    """Recompute every hash and link, in order; report the first entry that fails."""
    previous, expected_seq, checked = GENESIS_HASH, 1, 0
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=2000):
        if entry.seq != expected_seq:
            return AuditCheck(False, checked, expected_seq, f"entry #{expected_seq} is missing")
        if entry.prev_hash != previous:
            return AuditCheck(
                False, checked, entry.seq, "its previous-hash does not match the entry before it"
            )
        if entry_hash(entry) != entry.hash:
            return AuditCheck(False, checked, entry.seq, "its content does not match its hash")
        previous, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
    head = AuditHead.objects.filter(id=1).first()
    if head is not None and head.last_seq != checked:
        return AuditCheck(
            False,
            checked,
            checked + 1,
            f"the log ends at #{checked} but #{head.last_seq} was written",
        )
    return AuditCheck(True, checked)
