"""Data access agreements (versioned licence texts a researcher accepts) and the
per-dataset blocklist of researchers revoked for misuse (REMS' blacklist)."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models


def agreement_digest(text: str) -> str:
    """SHA-256 (hex) of the agreement's exact text as UTF-8: what the researcher accepts,
    what the audit entry and the voucher's `terms` hash commit to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DataAccessAgreement(models.Model):
    """One version of a dataset's agreement. Versions are never edited: a change is a new
    version, so an acceptance recorded against (version, sha256) stays provable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(
        "marketplace.Dataset", on_delete=models.CASCADE, related_name="agreements"
    )
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    # Newlines normalised to \n before hashing, so a browser's \r\n does not change it.
    text = models.TextField(max_length=50_000)
    sha256 = models.CharField(max_length=64)
    # False once the donor drops the requirement or publishes a newer version.
    current = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="agreement_version_unique"),
            models.UniqueConstraint(
                fields=["dataset"],
                condition=models.Q(current=True),
                name="agreement_one_current",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class DatasetBlock(models.Model):
    """A researcher barred from a dataset, after a revocation for misuse. Lifting the block
    (the donor or an admin) keeps the row, with who lifted it and when."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(
        "marketplace.Dataset", on_delete=models.CASCADE, related_name="blocks"
    )
    researcher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataset_blocks"
    )
    reason = models.TextField(max_length=2000)
    # The revoked request that led to the block.
    request = models.ForeignKey(
        "marketplace.AccessRequest", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "researcher"],
                condition=models.Q(lifted_at__isnull=True),
                name="dataset_block_one_active",
            )
        ]

    def __str__(self) -> str:
        return f"{self.researcher_id} blocked from {self.dataset_id}"
