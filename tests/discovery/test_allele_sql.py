"""The Beacon's allele lookup is one SQL statement per database: PostgreSQL (production,
tests) and SQLite (`make run`'s embedded default) must select the same alleles for every
kind of query. A range, bracket or typed query once used PostgreSQL-only SQL and answered
500 under `make run` (a newcomer's finding)."""

from __future__ import annotations

import sqlite3
from typing import cast

import pytest
from django.db import connection

from discovery.beacon.query import parse
from discovery.beacon.selectors import allele_lookup_sql
from discovery.models import VariantAllele
from discovery.variants.normalise import stored_allele

pytestmark = pytest.mark.django_db

LONG = "A" * 300  # stored as a digest that carries its length
ROWS = [
    # chrom, pos (VCF), ref, alt, kind
    (17, 43044295, "A", "G", 1),
    (17, 43044290, "CAG", "C", 4),
    (17, 43044300, "A", "AT", 3),
    (17, 43044000, stored_allele(LONG), "A", 4),  # a 300-base deletion reaching past 43044295
    (17, 43050000, "C", "T", 1),
    (13, 43044295, "A", "G", 1),
]
QUERIES: list[dict[str, object]] = [
    {"referenceName": "17", "start": 43044294, "referenceBases": "A", "alternateBases": "G"},
    {"referenceName": "17", "start": 43044280, "end": 43044310},
    {"referenceName": "17", "start": 43044280, "end": 43044310, "variantType": "SNP"},
    {"referenceName": "17", "start": 43044280, "end": 43044310, "variantType": "DEL"},
    {"referenceName": "17", "start": 43044290, "end": 43044296},  # the long deletion overlaps
    {"referenceName": "17", "start": "43044280,43044295", "end": "43044290,43044300"},
    {
        "referenceName": "17",
        "start": 43044294,
        "end": 43044295,
        "referenceBases": "A",
        "alternateBases": "G",
    },
]


def _stored_rows() -> None:
    from discovery.models import VariantSource
    from marketplace.models import Role, User
    from tests.factories import UserFactory, ready_file

    donor = cast(User, UserFactory(role=Role.DONOR))
    source = VariantSource.objects.create(file=ready_file(donor))
    VariantAllele.objects.bulk_create(
        VariantAllele(
            chrom=c, pos=p, ref=r, alt=a, kind=k, allele_count=5, allele_number=10, source=source
        )
        for c, p, r, a, k in ROWS
    )


def test_postgresql_and_sqlite_select_the_same_alleles_for_every_kind_of_query() -> None:
    _stored_rows()
    table = VariantAllele._meta.db_table
    lite = sqlite3.connect(":memory:")
    lite.execute(
        f"CREATE TABLE {table} (source_id INTEGER, chrom INTEGER, pos INTEGER, ref TEXT, "
        "alt TEXT, kind INTEGER, allele_count INTEGER, allele_number INTEGER)"
    )
    lite.executemany(
        f"INSERT INTO {table} VALUES (1, ?, ?, ?, ?, ?, 5, 10)",  # noqa: S608 - test table
        ROWS,
    )
    selected = []
    for parameters in QUERIES:
        query = parse(parameters)
        sql, params = allele_lookup_sql(query, "postgresql")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            on_postgres = sorted(row[1:5] for row in cursor.fetchall())
        sql, params = allele_lookup_sql(query, "sqlite")
        on_sqlite = sorted(
            row[1:5] for row in lite.execute(sql.replace("%s", "?"), params).fetchall()
        )
        assert on_sqlite == on_postgres, parameters
        selected.append(on_postgres)
    # And they select what Beacon v2 means (0-based start; a range: overlapping variants).
    assert selected[0] == [(17, 43044295, "A", "G")]
    assert (17, 43044000, stored_allele(LONG), "A") in selected[4]
    assert all(row[3] == "G" or len(row[2]) == len(row[3]) for row in selected[2])
    assert selected[6] == selected[0]
