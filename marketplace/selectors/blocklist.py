"""Reads of the per-dataset blocklist."""

from __future__ import annotations

from django.db.models import QuerySet

from marketplace.models import Dataset, DatasetBlock, User


def blocked_from(*, dataset: Dataset, researcher: User) -> DatasetBlock | None:
    """The researcher's active block on the dataset, or None."""
    return DatasetBlock.objects.filter(
        dataset=dataset, researcher=researcher, lifted_at__isnull=True
    ).first()


def dataset_blocks(*, dataset: Dataset) -> QuerySet[DatasetBlock]:
    """Active blocks of a dataset, newest first, with the researcher loaded."""
    return DatasetBlock.objects.filter(dataset=dataset, lifted_at__isnull=True).select_related(
        "researcher"
    )
