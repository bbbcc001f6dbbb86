"""Catalogue reads: search and filters, and what each listing shows."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.db import connection
from django.db.models import BooleanField, FloatField, Q, QuerySet
from django.db.models.expressions import RawSQL

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
    postgres = connection.vendor == "postgresql"
    for column, value, lower in (
        ("format_index", filters.format, True),
        ("duo_index", filters.duo, False),
        ("reference_index", filters.reference, True),
    ):
        if not value:
            continue
        if postgres:  # the GIN token indexes of migration 0010
            qualified = f"marketplace_dataset.{column}"
            tokens = f"lower(btrim({qualified}))" if lower else f"btrim({qualified})"
            datasets = datasets.annotate(
                **{
                    f"{column}_hit": RawSQL(  # noqa: S611 - constant SQL; value is a parameter
                        f"string_to_array({tokens}, ' ') @> ARRAY[%s]::text[]",
                        [value.lower() if lower else value],
                        output_field=BooleanField(),
                    )
                }
            ).filter(**{f"{column}_hit": True})
        elif lower:
            datasets = datasets.filter(**{f"{column}__icontains": f" {value} "})
        else:
            datasets = datasets.filter(**{f"{column}__contains": f" {value} "})
    if filters.max_price is not None:
        datasets = datasets.filter(price__lte=filters.max_price)
    if filters.q:
        if postgres:
            # `search` is a stored tsvector with a GIN index (migration 0010), not a model
            # field: Django cannot declare a generated column that SQLite lacks.
            query = "websearch_to_tsquery('english'::regconfig, %s)"
            datasets = (
                datasets.annotate(
                    hit=RawSQL(  # noqa: S611 - constant SQL; the text is a parameter
                        f"marketplace_dataset.search @@ {query}",
                        [filters.q],
                        output_field=BooleanField(),
                    ),
                    rank=RawSQL(  # noqa: S611 - constant SQL; the text is a parameter
                        f"ts_rank(marketplace_dataset.search, {query})",
                        [filters.q],
                        output_field=FloatField(),
                    ),
                )
                .filter(hit=True)
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
