"""Reads behind the Beacon: which datasets take part, which filtering terms exist, and
which indexed alleles of which datasets match a query."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from core.errors import ValidationError
from discovery.beacon.query import RANGE_LOOKBACK_BASES, BeaconQueryError, VariantQuery
from discovery.models import BeaconPolicy, VariantAllele, VariantSource
from marketplace.consent.codes import parse_purpose_filter
from marketplace.consent.terms import term
from marketplace.models import Dataset
from marketplace.selectors.datasets import DatasetFilters, dataset_list
from marketplace.web.results_cache import _generation, cache_down

# Formats as EDAM ontology terms (the filtering-terms vocabulary for file formats).
EDAM_FORMATS = {"EDAM:format_3016": "VCF", "EDAM:format_3020": "BCF"}
FORMAT_TERMS = {name: edam for edam, name in EDAM_FORMATS.items()}
T = TypeVar("T")


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


# This process's copies of the cached lists, so that a query does not unpickle 1,000
# datasets from the shared cache each time: {key: (monotonic expiry, value)}. The key
# holds the catalogue's generation, read from the shared cache on every call, so a change
# made through any process is seen at once here too.
_LOCAL: dict[str, tuple[float, Any]] = {}
_LOCAL_ENTRIES = 64


def _cached(name: str, build: Callable[[], T]) -> T:
    """`build()`, kept under the catalogue's generation in this process and in the
    shared cache for CATALOGUE_CACHE_S (0: built every time; a cache that is down is
    passed by)."""
    if settings.CATALOGUE_CACHE_S <= 0:
        return build()
    try:
        key = f"beacon:{name}:{_generation()}"
    except cache_down():
        return build()
    now = time.monotonic()
    local = _LOCAL.get(key)
    if local is not None and local[0] > now:
        return cast(T, local[1])
    try:
        value = cache.get(key)
    except cache_down():
        return build()
    if value is None:
        value = build()
        with contextlib.suppress(*cache_down()):
            cache.set(key, value, timeout=settings.CATALOGUE_CACHE_S)
    if len(_LOCAL) >= _LOCAL_ENTRIES:  # a snapshot: another thread may be adding one
        entries = list(_LOCAL.items())
        for stale in [k for k, (expiry, _) in entries if expiry <= now] or [k for k, _ in entries]:
            _LOCAL.pop(stale, None)
    _LOCAL[key] = (now + settings.CATALOGUE_CACHE_S, value)
    return cast(T, value)


def beacon_datasets(*, filters: Sequence[str] = ()) -> list[BeaconDataset]:
    """Listed datasets with at least one indexed file, narrowed by Beacon filtering terms:
    DUO codes (together one research purpose; a dataset matches when the consent matcher
    lets that purpose in, DESIGN "Consent", so a GRU dataset matches HMB) and EDAM format
    terms. Raises BeaconQueryError for a term we do not offer.

    Kept in the shared cache (and this process's memory) under the catalogue's generation
    (a listing change, a donor's granularity or a newly indexed file makes it stale at
    once; CATALOGUE_CACHE_S bounds the rest): every g_variants query needs this list,
    which changes rarely."""
    digest = hashlib.sha256("\n".join(filters).encode()).hexdigest()[:32]
    return list(_cached(f"datasets:{digest}", lambda: tuple(_beacon_datasets(filters))))


def beacon_sources() -> dict[int, tuple[str, tuple[UUID, ...]]]:
    """{variant source id: (its assembly, the Beacon datasets holding its file)} for every
    indexed file of a Beacon dataset (unfiltered), cached like `beacon_datasets`. With it
    the variant lookup reads the allele table alone, as a bare indexed lookup does, and
    the datasets are told apart here rather than by a join and a list of 1,000 ids sent
    with every query."""
    return _cached("sources", _beacon_sources)


def _beacon_sources() -> dict[int, tuple[str, tuple[UUID, ...]]]:
    datasets = [d.id for d in beacon_datasets()]
    through = Dataset.files.through
    holders: dict[UUID, list[UUID]] = defaultdict(list)
    for file_id, dataset_id in through.objects.filter(dataset_id__in=datasets).values_list(
        "genomicfile_id", "dataset_id"
    ):
        holders[file_id].append(dataset_id)
    return {
        source_id: (assembly, tuple(sorted(holders[file_id], key=str)))
        for source_id, file_id, assembly in VariantSource.objects.filter(
            file_id__in=list(holders)
        ).values_list("id", "file_id", "assembly")
    }


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


# The number of bases of a stored REF: a long allele is stored as "#<length>:<digest>"
# (discovery.variants.normalise.stored_length). PostgreSQL in production and tests, SQLite
# under `make run`: the same rule in each one's functions.
_REF_LENGTH = {
    "postgresql": "CASE WHEN substr(ref, 1, 1) = '#' "
    "THEN split_part(substr(ref, 2), ':', 1)::int ELSE length(ref) END",
    "sqlite": "CASE WHEN substr(ref, 1, 1) = '#' "
    "THEN CAST(substr(ref, 2, instr(ref, ':') - 2) AS INTEGER) ELSE length(ref) END",
}


def allele_lookup_sql(query: VariantQuery, vendor: str) -> tuple[str, list[Any]]:
    """(SQL, parameters) selecting the indexed alleles `query` matches, as rows of
    (source_id, chrom, pos, ref, alt, allele_count, allele_number), for the database
    `vendor` ("postgresql" or "sqlite"; Django's `connection.vendor`). Beacon v2 ranges:
    a range query matches variants overlapping [start, end), a bracket query variants
    whose start and end fall in the brackets (0-based; VCF POS is start + 1)."""
    ref_length = _REF_LENGTH[vendor]
    where = ["chrom = %s"]
    params: list[Any] = [query.chrom]
    if query.kind == "sequence":
        where += ["pos = %s", "ref = %s", "alt = %s"]
        params += [query.start_min + 1, query.ref, query.alt]
    else:
        lookback = RANGE_LOOKBACK_BASES if query.kind == "range" else 0
        where.append("pos BETWEEN %s AND %s")
        params += [max(query.start_min - lookback, 0) + 1, query.start_max + 1]
        if query.kind == "range":
            where.append(f"pos - 1 + {ref_length} > %s")
            params.append(query.start_min)
        else:
            where.append(f"pos - 1 + {ref_length} BETWEEN %s AND %s")
            params += [query.end_min, query.end_max]
        if query.ref:
            where.append("ref = %s")
            params.append(query.ref)
        if query.alt:
            where.append("alt = %s")
            params.append(query.alt)
    if query.variant_types is not None:
        kinds = sorted(query.variant_types)
        where.append(f"kind IN ({', '.join(['%s'] * len(kinds))})" if kinds else "1 = 0")
        params += kinds
    sql = (
        "SELECT source_id, chrom, pos, ref, alt, allele_count, allele_number "  # noqa: S608 - our table; values are parameters
        f"FROM {VariantAllele._meta.db_table} WHERE {' AND '.join(where)}"
    )
    return sql, params


def matching_alleles(
    *, query: VariantQuery, dataset_ids: Sequence[UUID]
) -> dict[UUID, list[MatchedAllele]]:
    """{dataset id: its matched alleles}, AC and AN summed over the dataset's files (files
    of one dataset are taken to hold different samples). Datasets without a match are
    absent from the result. One lookup of the allele table alone (served by the primary
    key's btree on chrom, pos, ref, alt), its rows told apart by dataset with
    `beacon_sources()`."""
    if not dataset_ids:
        return {}
    sql, params = allele_lookup_sql(query, connection.vendor)
    sources = beacon_sources()
    wanted = set(dataset_ids)
    sums: dict[tuple[UUID, int, int, str, str], list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for source_id, chrom, pos, ref, alt, count, number in cursor.fetchall():
            assembly, holders = sources.get(source_id, ("", ()))
            if query.assembly and assembly != query.assembly:
                continue
            for dataset_id in holders:
                if dataset_id in wanted:
                    tally = sums.setdefault((dataset_id, chrom, pos, ref, alt), [0, 0])
                    tally[0] += count
                    tally[1] += number
    found: dict[UUID, list[MatchedAllele]] = defaultdict(list)
    for (dataset_id, chrom, pos, ref, alt), (count, number) in sums.items():
        found[dataset_id].append(MatchedAllele(chrom, pos, ref, alt, count, number))
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
