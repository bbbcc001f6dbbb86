"""What a dataset's Beacon may say, chosen by its donor (issue 18 §2)."""

from __future__ import annotations

from django.db import models


class BeaconPolicy(models.Model):
    """Beacon v2 granularity per dataset: `boolean` (yes/no) or `count`; never `record`
    (individual-level data). A dataset without a row answers `boolean`."""

    class Granularity(models.TextChoices):
        BOOLEAN = "boolean", "Yes or no only"
        COUNT = "count", "Counts"

    dataset = models.OneToOneField(
        "marketplace.Dataset", on_delete=models.CASCADE, related_name="beacon_policy"
    )
    granularity = models.CharField(
        max_length=8, choices=Granularity.choices, default=Granularity.BOOLEAN
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.dataset_id}: {self.granularity}"
