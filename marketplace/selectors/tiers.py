"""Reads of region tiers."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from marketplace.models import Dataset, DatasetTier, User


def tier_list(*, dataset: Dataset, viewer: User | None) -> QuerySet[DatasetTier]:
    """The tiers of `dataset`: those for sale, or every one (preparing, failed) for its
    donor, cheapest first."""
    tiers = DatasetTier.objects.filter(dataset=dataset)
    if viewer is None or viewer.pk != dataset.donor_id:
        tiers = tiers.filter(state=DatasetTier.State.READY)
    return tiers.order_by("price", "name")


def tier_get(*, dataset: Dataset, tier_id: UUID | str) -> DatasetTier | None:
    """The ready tier `tier_id` of `dataset`, or None."""
    return DatasetTier.objects.filter(
        dataset=dataset, pk=tier_id, state=DatasetTier.State.READY
    ).first()
