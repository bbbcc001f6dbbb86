"""Region tiers: a dataset sold limited to regions (README "Selling regions")."""

from __future__ import annotations

import uuid

from django.db import models


class DatasetTier(models.Model):
    """A scope of a dataset with its own price: the records of its files inside `regions`.

    Each file of the dataset gets a region object (genomics: its own Crypt4GH object under
    a fresh data key, a child of the file), listed in `files` once the worker made it; a
    grant of the tier is a header for those objects only.
    """

    class State(models.TextChoices):
        PREPARING = "preparing", "Being prepared"
        READY = "ready", "For sale"
        FAILED = "failed", "Could not be prepared"

    class Source(models.TextChoices):
        BED = "bed", "BED regions"
        GENES = "genes", "Gene names"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(
        "marketplace.Dataset", on_delete=models.CASCADE, related_name="tiers"
    )
    name = models.CharField(max_length=100)
    # Token base units, as Dataset.price.
    price = models.DecimalField(max_digits=78, decimal_places=0)
    source = models.CharField(max_length=8, choices=Source.choices)
    genes = models.JSONField(default=list, blank=True)
    # The gene table's version the names were resolved with (genomics.regions.GENE_TABLES).
    gene_table = models.CharField(max_length=100, blank=True)
    reference_build = models.CharField(max_length=16, blank=True)
    # [[contig, start, end], ...], BED coordinates, sorted and merged (genomics.regions).
    regions = models.JSONField(default=list)
    regions_sha256 = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PREPARING)
    error = models.TextField(blank=True)
    # When a worker claimed the build (one build at a time; the reconciler sends the task
    # again only for a tier never claimed, or claimed longer ago than any task may run).
    building_since = models.DateTimeField(null=True, blank=True)
    files = models.ManyToManyField("genomics.GenomicFile", related_name="tiers", blank=True)
    # Worker-only HMAC (ledger.integrity) over the region objects it made for this tier
    # (ids, parents, regions' SHA-256, headers' SHA-256): the web tier can write `files`, so
    # the worker grants a tier's objects only while this still holds (RELIABILITY.md 23).
    objects_mac = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["price", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=1), name="tier_price_positive"),
            models.UniqueConstraint(fields=["dataset", "name"], name="tier_name_once"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.dataset_id})"

    def scope(self) -> dict[str, object]:
        """What a grant of this tier covers, as terms and audit entries name it."""
        return {
            "tier": str(self.pk),
            "name": self.name,
            "regions_sha256": self.regions_sha256,
            "regions": len(self.regions),
            "genes": self.genes,
            "gene_table": self.gene_table,
            "reference_build": self.reference_build,
        }
