"""Donors' rights (issue 19 §5): erasure requests (GDPR Art. 17) and the worker's record of
the storage objects an erasure must delete."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Erasure(models.Model):
    """A donor's erasure of some or all of their files, done by the worker
    (`marketplace.services.erasure.erasure_run`): headers destroyed first, then the
    payloads and everything derived, then the rows; `summary` says what was done."""

    class State(models.TextChoices):
        REQUESTED = "requested", "Requested"
        DONE = "done", "Done"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    donor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="erasures"
    )
    # The files asked for (ids as text); `everything` also erases the donor's personal
    # fields in the audit log.
    file_ids = models.JSONField(default=list)
    everything = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.REQUESTED)
    # What the worker did: {"headers_destroyed", "grants_destroyed", "storage_objects_deleted",
    # "rows_deleted": {table: n}, "audit_personal_rows_deleted", "visas_withdrawn",
    # "vacuumed": [tables]}.
    summary = models.JSONField(default=dict, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"erasure {self.pk} ({self.state})"


class ErasureObject(models.Model):
    """A storage object (or folder) the worker found hanging off an erased file, recorded
    before any row goes so a crash cannot forget it. Written by the worker only (the web
    role cannot: a row here is an order to delete)."""

    erasure = models.ForeignKey(Erasure, on_delete=models.CASCADE, related_name="storage_objects")
    storage_name = models.CharField(max_length=1024)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["erasure", "storage_name"], name="erasure_object_once")
        ]

    def __str__(self) -> str:
        return self.storage_name
