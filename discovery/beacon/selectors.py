"""Reads behind the Beacon: which datasets take part, which filtering terms exist, and
which indexed alleles of which datasets match a query."""

from __future__ import annotations

import contextlib
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from core.errors import ValidationError
from discovery.beacon.query import RANGE_LOOKBACK_BASES, BeaconQueryError, VariantQuery
from discovery.models import BeaconPolicy, VariantSource
from marketplace.consent.codes import parse_purpose_filter
from marketplace.consent.terms import term
from marketplace.models import Dataset
from marketplace.selectors.datasets import DatasetFilters, dataset_list
from marketplace.web.results_cache import _generation, cache_down

# Formats as EDAM ontology terms (the filtering-terms vocabulary for file formats).
EDAM_FORMATS = {"EDAM:format_3016": "VCF", "EDAM:format_3020": "BCF"}
FORMAT_TERMS = {name: edam for edam, name in EDAM_FORMATS.items()}


@dataclass(frozen=True)
class BeaconDataset:
    id: UUID
    title: str
    description: str
    granularity: str


@dataclass(frozen=True)
class MatchedAllele:
    chrom: int
    pos: int
    ref: str
    alt: str
    allele_count: int
    allele_number: int


def beacon_datasets(*, filters: Sequence[str] = ()) -> list[BeaconDataset]:
    """Listed datasets with at least one indexed file, narrowed by Beacon filtering terms:
    DUO codes (together one research purpose; a dataset matches when the consent matcher
    lets that purpose in, DESIGN "Consent", so a GRU dataset matches HMB) and EDAM format
    terms. Raises BeaconQueryError for a term we do not offer.

    Kept in the shared cache under the catalogue's generation (a listing change, a donor's
    granularity or a newly indexed file makes it stale at once; CATALOGUE_CACHE_S bounds
    the rest): every g_variants query needs this list, which changes rarely."""
    if settings.CATALOGUE_CACHE_S <= 0:
        return _beacon_datasets(filters)
    digest = hashlib.sha256("\n".join(filters).encode()).hexdigest()[:32]
    try:
        key = f"beacon:datasets:{_generation()}:{digest}"
        cached = cache.get(key)
    except cache_down():
        return _beacon_datasets(filters)
    if cached is None:
        cached = _beacon_datasets(filters)
        with contextlib.suppress(*cache_down()):
            cache.set(key, cached, timeout=settings.CATALOGUE_CACHE_S)
    return list(cached)


def _beacon_datasets(filters: Sequence[str]) -> list[BeaconDataset]:
    duo = [f for f in filters if f.startswith("DUO:")]
    formats = [f for f in filters if not f.startswith("DUO:")]
    for unknown in (f for f in formats if f not in EDAM_FORMATS):
        raise BeaconQueryError(f"Unknown filtering term {unknown!r} (see /filtering_terms).")
    try:
        purpose = parse_purpose_filter(duo, field="filters") if duo else ()
    except ValidationError as exc:
        raise BeaconQueryError(" ".join(exc.fields.get("filters", [])) or str(exc)) from exc
    datasets = dataset_list(filters=DatasetFilters(duo=purpose))
    for name in {EDAM_FORMATS[f] for f in formats}:
        datasets = datasets.filter(format_index__contains=f" {name} ")
    indexed = VariantSource.objects.values("file_id")
    rows = (
        datasets.filter(files__in=indexed)
        .distinct()
        .order_by("pk")
        .values_list("pk", "title", "description")
    )
    chosen = dict(BeaconPolicy.objects.values_list("dataset_id", "granularity"))
    return [
        BeaconDataset(pk, title, description, chosen.get(pk, BeaconPolicy.Granularity.BOOLEAN))
        for pk, title, description in rows
    ]


_REF_LENGTH = (
    "CASE WHEN left(a.ref, 1) = '#' THEN split_part(substr(a.ref, 2), ':', 1)::int "
    "ELSE length(a.ref) END"
)


def matching_alleles(
    *, query: VariantQuery, dataset_ids: Sequence[UUID]
) -> dict[UUID, list[MatchedAllele]]:
    """{dataset id: its matched alleles}, AC and AN summed over the dataset's files (files
    of one dataset are taken to hold different samples). Datasets without a match are
    absent from the result. PostgreSQL (served by the primary key's btree on chrom, pos)."""
    if not dataset_ids:
        return {}
    where = ["a.chrom = %s"]
    params: list[Any] = [query.chrom]
    if query.kind == "sequence":
        where += ["a.pos = %s", "a.ref = %s", "a.alt = %s"]
        params += [query.start_min + 1, query.ref, query.alt]
    else:
        lookback = RANGE_LOOKBACK_BASES if query.kind == "range" else 0
        where.append("a.pos BETWEEN %s AND %s")
        params += [max(query.start_min - lookback, 0) + 1, query.start_max + 1]
        if query.kind == "range":
            where.append(f"a.pos - 1 + {_REF_LENGTH} > %s")
            params.append(query.start_min)
        else:
            where.append(f"a.pos - 1 + {_REF_LENGTH} BETWEEN %s AND %s")
            params += [query.end_min, query.end_max]
        if query.ref:
            where.append("a.ref = %s")
            params.append(query.ref)
        if query.alt:
            where.append("a.alt = %s")
            params.append(query.alt)
    if query.variant_types is not None:
        where.append("a.kind = ANY(%s)")
        params.append(sorted(query.variant_types))
    if query.assembly:
        where.append("s.assembly = %s")
        params.append(query.assembly)
    where.append("df.dataset_id = ANY(%s)")
    params.append(list(dataset_ids))
    sql = (
        "SELECT df.dataset_id, a.chrom, a.pos, a.ref, a.alt, "  # noqa: S608 - our table names; values are parameters
        "sum(a.allele_count), sum(a.allele_number) "
        "FROM discovery_variantallele a "
        "JOIN discovery_variantsource s ON s.id = a.source_id "
        f"JOIN {Dataset.files.through._meta.db_table} df ON df.genomicfile_id = s.file_id "
        f"WHERE {' AND '.join(where)} "
        "GROUP BY df.dataset_id, a.chrom, a.pos, a.ref, a.alt"
    )
    found: dict[UUID, list[MatchedAllele]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for dataset_id, chrom, pos, ref, alt, count, number in cursor.fetchall():
            found[dataset_id].append(MatchedAllele(chrom, pos, ref, alt, int(count), int(number)))
    return dict(found)


@dataclass(frozen=True)
class FilteringTerm:
    id: str
    label: str


def filtering_terms() -> list[FilteringTerm]:
    """The DUO codes of the Beacon's listed datasets (and every DUO permission, since a
    purpose can match datasets listed under a broader one) and their formats."""
    datasets = beacon_datasets()
    ids = [d.id for d in datasets]
    codes: set[str] = set()
    formats: set[str] = set()
    for duo_codes, format_index in Dataset.objects.filter(pk__in=ids).values_list(
        "duo_codes", "format_index"
    ):
        codes.update(c["code"] for c in duo_codes)
        formats.update(format_index.split())
    from marketplace.consent import all_terms

    codes.update(t.id for t in all_terms() if t.is_permission)
    terms = [FilteringTerm(c, t.label if (t := term(c)) else c) for c in sorted(codes)]
    terms += [FilteringTerm(FORMAT_TERMS[f], f) for f in sorted(formats) if f in FORMAT_TERMS]
    return terms
