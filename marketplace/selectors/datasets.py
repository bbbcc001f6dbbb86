"""Catalogue reads: search and filters, and what each listing shows."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Q, QuerySet

from core.errors import NotFound
from marketplace.models import Dataset, Role, User


@dataclass(frozen=True)
class DatasetFilters:
    q: str = ""
    format: str = ""
    duo: str = ""
    max_price: Decimal | None = None
    reference: str = ""


def dataset_list(*, filters: DatasetFilters) -> QuerySet[Dataset]:
    """Listed datasets matching the filters; full-text ranked on PostgreSQL."""
    datasets = Dataset.objects.filter(state=Dataset.State.LISTED).select_related("donor")
    if filters.format:
        datasets = datasets.filter(format_index__icontains=f" {filters.format} ")
    if filters.duo:
        datasets = datasets.filter(duo_index__contains=f" {filters.duo} ")
    if filters.reference:
        datasets = datasets.filter(reference_index__icontains=f" {filters.reference} ")
    if filters.max_price is not None:
        datasets = datasets.filter(price__lte=filters.max_price)
    if filters.q:
        if connection.vendor == "postgresql":
            vector = SearchVector("title", weight="A", config="english") + SearchVector(
                "description", weight="B", config="english"
            )
            query = SearchQuery(filters.q, search_type="websearch", config="english")
            datasets = (
                datasets.annotate(rank=SearchRank(vector, query))
                .filter(rank__gt=0)
                .order_by("-rank", "-created_at")
            )
        else:
            datasets = datasets.filter(
                Q(title__icontains=filters.q) | Q(description__icontains=filters.q)
            )
    return datasets


def dataset_get(*, dataset_id: UUID | str, viewer: User | None) -> Dataset:
    """A listed dataset for anyone; a withdrawn one only for its donor and admins."""
    dataset = Dataset.objects.select_related("donor").filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFound("No such dataset.")
    if dataset.state != Dataset.State.LISTED and not (
        viewer is not None and (viewer.pk == dataset.donor_id or viewer.role == Role.ADMIN)
    ):
        raise NotFound("No such dataset.")
    return dataset
