"""Catalogue reads: search and filters, and what each listing shows."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.db import connection
from django.db.models import BooleanField, FloatField, Q, QuerySet
from django.db.models.expressions import RawSQL

from core.errors import NotFound
from marketplace.consent.codes import ConsentCode
from marketplace.consent.index import REQUIREMENT_VOCABULARY, FitQuery, purpose_query
from marketplace.consent.matching import GS
from marketplace.models import Dataset, Role, User


@dataclass(frozen=True)
class DatasetFilters:
    q: str = ""
    format: str = ""
    # A research purpose: datasets whose consent it would fit (or send to review).
    duo: tuple[ConsentCode, ...] = ()
    max_price: Decimal | None = None
    reference: str = ""


def _tokens(column: str) -> str:
    # The expression the GIN indexes of migrations 0010 and 0013 are built on.
    return f"string_to_array(btrim(marketplace_dataset.{column}), ' ')"


def _consent_filter(
    datasets: QuerySet[Dataset], query: FitQuery, *, postgres: bool
) -> QuerySet[Dataset]:
    """Keep the datasets the purpose fits (DESIGN "Consent"): the matcher's rule, read from
    the precomputed tokens (marketplace.consent.index). PostgreSQL uses the GIN-indexed
    array operators; elsewhere the same test is spelled with LIKE on the padded tokens."""
    if postgres:
        fits, requires = _tokens("duo_fits"), _tokens("duo_requires")
        signed = query.signed_groups()
        tests = [(f"{fits} && %s::text[]", list(g)) for g in signed or query.groups]
        if query.fits_all:
            tests.append((f"{fits} @> %s::text[]", list(query.fits_all)))
        if signed is None:
            tests.append((f"{requires} <@ %s::text[]", list(query.requires_within)))
        for index, (sql, tokens) in enumerate(tests):
            name = f"consent_fit_{index}"
            datasets = datasets.annotate(
                **{name: RawSQL(sql, [tokens], output_field=BooleanField())}  # noqa: S611
            ).filter(**{name: True})
        return datasets
    condition = Q()
    for token in query.fits_all:
        condition &= Q(duo_fits__contains=f" {token} ")
    for group in query.groups:
        any_of = Q()
        for token in group:
            any_of |= Q(duo_fits__contains=f" {token} ")
        condition &= any_of
    for token in REQUIREMENT_VOCABULARY:
        if token not in query.requires_within:
            condition &= ~Q(duo_requires__contains=f" {token} ")
    any_region = Q(duo_requires__contains=f" {GS}=")
    named = Q()
    for region in (t for t in query.requires_within if t.startswith(f"{GS}=")):
        named |= Q(duo_requires__contains=f" {region} ")
    return datasets.filter(condition & (~any_region | named))


def dataset_list(*, filters: DatasetFilters) -> QuerySet[Dataset]:
    """Listed datasets matching the filters; full-text ranked on PostgreSQL. `duo` is a
    research purpose: the datasets whose consent it would fit."""
    datasets = (
        Dataset.objects.filter(state=Dataset.State.LISTED)
        .select_related("donor")
        .prefetch_related("tiers")
    )
    postgres = connection.vendor == "postgresql"
    if filters.duo:
        datasets = _consent_filter(datasets, purpose_query(filters.duo), postgres=postgres)
    for column, value, lower in (
        ("format_index", filters.format, True),
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
