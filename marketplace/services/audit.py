"""Appending to the audit log and checking it.

Personal fields (issue 19 §5): when a person acts, their username and the free text they
gave (`PERSONAL_KEYS` of `data`: reasons, comments, statements, messages) are kept in an
`AuditPersonal` side row, and the hashed entry holds only ids plus `personal_commitment`
= SHA-256(salt ‖ canonical JSON of those fields). Erasure deletes the side row and its
salt (`audit_personal_erase`); the chain and its anchored roots are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from marketplace.models import AuditEntry, AuditHead, AuditPersonal
from marketplace.models.audit import GENESIS_HASH

# Keys of an entry's `data` that hold what a person typed: kept out of the hashed entry.
PERSONAL_KEYS = frozenset({"reason", "comment", "statement", "message", "filename", "note"})
ERASED_LABEL = "(erased)"


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
    # Only entries with personal fields outside the chain carry the commitment, so every
    # entry written before it existed hashes exactly as it did.
    if entry.personal_commitment is not None:
        body["personal_commitment"] = entry.personal_commitment
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def personal_commitment(salt: bytes, fields: dict[str, Any]) -> str:
    """SHA-256 (hex) of the salt followed by the fields' canonical JSON."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(salt + text.encode()).hexdigest()


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
    # Through JSON once, so what is hashed is what the database gives back.
    body: dict[str, Any] = json.loads(json.dumps(data or {}, default=str))
    actor_id = str(getattr(actor, "pk", "") or "")
    personal: dict[str, Any] = {}
    if actor_id:
        personal = {"actor_label": str(getattr(actor, "username", "") or "")}
        personal.update({key: body.pop(key) for key in sorted(PERSONAL_KEYS & body.keys())})
    salt = secrets.token_bytes(32)
    with transaction.atomic():
        head, _ = AuditHead.objects.select_for_update().get_or_create(id=1)
        entry = AuditEntry(
            seq=head.last_seq + 1,
            prev_hash=head.last_hash,
            created_at=timezone.now(),
            actor_id=actor_id,
            actor_label="" if actor_id else ("system" if actor is None else ""),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            data=body,
            personal_commitment=personal_commitment(salt, personal) if personal else None,
        )
        entry.hash = entry_hash(entry)
        entry.save(force_insert=True)
        if personal:
            AuditPersonal.objects.create(
                entry=entry, subject_id=actor_id, salt=salt, fields=personal
            )
        AuditHead.objects.filter(id=1).update(last_seq=entry.seq, last_hash=entry.hash)
    return entry


@dataclass(frozen=True)
class AuditView:
    """An entry as people read it: `fields` is its data with its personal fields back in;
    `who` is the actor's username, "system", or ERASED_LABEL once the side row is gone."""

    entry: AuditEntry
    who: str
    fields: dict[str, Any]
    erased: bool


def audit_views(entries: Iterable[AuditEntry]) -> list[AuditView]:
    """The entries with their personal fields joined back (one query for the batch)."""
    rows = list(entries)
    personal = {
        p.entry_id: p.fields
        for p in AuditPersonal.objects.filter(entry_id__in=[e.seq for e in rows])
    }
    views = []
    for entry in rows:
        fields = personal.get(entry.seq)
        erased = entry.personal_commitment is not None and fields is None
        if erased:
            who = ERASED_LABEL
        elif fields is not None:
            who = str(fields.get("actor_label", ""))
        else:
            who = entry.actor_label or "system"
        extra = {k: v for k, v in (fields or {}).items() if k != "actor_label"}
        views.append(AuditView(entry, who, {**entry.data, **extra}, erased))
    return views


def audit_personal_erase(*, subject_ids: Sequence[str], entry_seqs: Sequence[int] | None) -> int:
    """Delete the personal side rows (fields and salt) of these people: all of them, or
    only those of `entry_seqs`. Returns how many went. The entries and the chain stay."""
    rows = AuditPersonal.objects.filter(subject_id__in=[str(s) for s in subject_ids])
    if entry_seqs is not None:
        rows = rows.filter(entry_id__in=list(entry_seqs))
    deleted, _ = rows.delete()
    return deleted


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
    for side in AuditPersonal.objects.select_related("entry").iterator(chunk_size=2000):
        if side.entry.personal_commitment != personal_commitment(bytes(side.salt), side.fields):
            return AuditCheck(
                False, checked, side.entry_id, "its personal fields do not match its commitment"
            )
    head = AuditHead.objects.filter(id=1).first()
    if head is not None and head.last_seq != checked:
        return AuditCheck(
            False,
            checked,
            checked + 1,
            f"the log ends at #{checked} but #{head.last_seq} was written",
        )
    return AuditCheck(True, checked)
