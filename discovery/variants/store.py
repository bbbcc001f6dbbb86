"""Writing allele rows: COPY into a per-ingest temporary table as they are read, then one
INSERT ... SELECT ... GROUP BY into the index (PostgreSQL). Other databases (SQLite in
local development) keep the rows in memory and bulk-insert them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import connection

from discovery.models import VariantAllele
from discovery.variants.reader import Row

TABLE = VariantAllele._meta.db_table
COLUMNS = ("chrom", "pos", "ref", "alt", "kind", "allele_count", "allele_number")


class AlleleSink:
    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.temp = f"discovery_ingest_{uuid.uuid4().hex}"
        self.created = False
        self.memory: dict[tuple[int, int, str, str], list[int]] = {}

    def add(self, rows: list[Row]) -> None:
        if not rows:
            return
        if not self.postgres:
            for chrom, pos, ref, alt, kind, count, number in rows:
                seen = self.memory.setdefault((chrom, pos, ref, alt), [kind, 0, 0])
                seen[1] += count
                seen[2] = max(seen[2], number)
            return
        with connection.cursor() as cursor:
            if not self.created:
                cursor.execute(
                    f"CREATE TEMP TABLE {self.temp} (chrom int2, pos int4, ref text, "
                    "alt text, kind int2, allele_count int4, allele_number int4)"
                )
                self.created = True
            with cursor.copy(f"COPY {self.temp} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def flush(self, *, source_id: int) -> int:
        """Move the rows into the index for `source_id`; the number of alleles written.
        The same allele twice in one file (two records) sums its counts."""
        if not self.postgres:
            objects = [
                VariantAllele(
                    chrom=chrom,
                    pos=pos,
                    ref=ref,
                    alt=alt,
                    kind=kind,
                    allele_count=count,
                    allele_number=number,
                    source_id=source_id,
                )
                for (chrom, pos, ref, alt), (kind, count, number) in self.memory.items()
            ]
            VariantAllele.objects.bulk_create(objects, batch_size=5000)
            self.memory = {}
            return len(objects)
        if not self.created:
            return 0
        with connection.cursor() as cursor:
            # Sorted by the primary key so rows of nearby positions share pages.
            cursor.execute(
                f"INSERT INTO {TABLE} (chrom, pos, ref, alt, source_id, kind, allele_count, "  # noqa: S608
                f"allele_number) SELECT chrom, pos, ref, alt, %s, min(kind), "
                f"sum(allele_count), max(allele_number) FROM {self.temp} "
                "GROUP BY chrom, pos, ref, alt ORDER BY chrom, pos, ref, alt",
                [source_id],
            )
            written = cursor.rowcount
        self.discard()
        return written

    def discard(self) -> None:
        self.memory = {}
        if self.created:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.temp}")
            self.created = False


def copy_rows(rows: Iterable[tuple[object, ...]], *, columns: tuple[str, ...]) -> None:
    """Bulk load into the index with COPY (the benchmark's loader)."""
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {TABLE} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
