"""The audit log: append-only, each entry sealed with the hash of the one before it.

HIPAA §164.312(b) asks for audit controls; ASVS 16 for tamper evidence. Each entry's
`hash` is SHA-256 over a canonical JSON form of its fields and the previous entry's hash,
so changing or removing any entry breaks every hash after it (`verify_audit` finds the
first). The database itself refuses UPDATE and DELETE on the table (triggers, migration
0003), and the model refuses them too, so no code path can rewrite history.

Personal fields (issue 19 §5, GDPR Art. 17): an entry written by a person keeps only ids
in its hashed fields; the person's name and what they typed (`PERSONAL_KEYS`) go to
`AuditPersonal`, and the entry holds `personal_commitment`, SHA-256 over a random salt and
those fields. Erasing the person deletes the side row and its salt: the chain and its
anchored roots still verify, and the commitment alone reveals nothing. Entries written
before this existed (no commitment) keep what they hold.
"""

from __future__ import annotations

from typing import Any

from django.db import models

GENESIS_HASH = "0" * 64


class AuditEntry(models.Model):
    seq = models.BigIntegerField(primary_key=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    actor_id = models.CharField(max_length=64, blank=True)  # a user id, or "" for the system
    actor_label = models.CharField(max_length=160, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict)
    # SHA-256 (hex) of the salt and the personal fields kept in AuditPersonal; NULL for
    # entries without any (and for every entry written before side rows existed).
    # NULL, not "": a nullable column is added in place on SQLite (a default would make
    # Django rebuild the table and lose its append-only triggers).
    personal_commitment = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("audit entries are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit entries are never deleted")


class AuditPersonal(models.Model):
    """The personal fields of one audit entry, outside the hash chain: `fields` is
    {"actor_label": ..., and any of PERSONAL_KEYS the entry's data had}, `salt` 32 random
    bytes. `subject_id` is the person they belong to (the actor). Deleted, never changed,
    when that person's data is erased; the web role may only insert (create_web_role)."""

    entry = models.OneToOneField(
        AuditEntry,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        db_constraint=False,  # the log is append-only already; no trigger events on it
        related_name="personal",
    )
    subject_id = models.CharField(max_length=64, db_index=True)
    salt = models.BinaryField(max_length=32)
    fields = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"personal fields of #{self.entry_id}"


class AuditHead(models.Model):
    """One row: the last sequence number and hash. Appending locks it, so entries are
    chained one at a time even with many writers."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit head at #{self.last_seq}"


class Anchor(models.Model):
    """A Merkle root put on chain through `AccessMarket.anchor`: a batch of audit entries
    (kind 2, entries first_seq..last_seq) or of dataset records (kind 1, `datasets`)."""

    class Kind(models.IntegerChoices):
        DATASETS = 1, "Dataset records"
        AUDIT = 2, "Audit entries"

    kind = models.PositiveSmallIntegerField(choices=Kind.choices)
    root = models.CharField(max_length=66, unique=True)
    first_seq = models.BigIntegerField(null=True, blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    datasets = models.JSONField(default=list, blank=True)
    # The dataset record hashes under the root: an edited listing has a new record hash
    # and is anchored again.
    records = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Filled from the confirmed `Anchored` event.
    tx_hash = models.CharField(max_length=66, blank=True)
    block_number = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} root {self.root[:12]}…"
