"""Beacon g_variants at scale: 10^8 indexed alleles across 1,000 datasets in PostgreSQL,
queried through the whole stack in-process (Django, DRF, the Beacon's dataset and
consent selection, the variant lookup and the disclosure control for every dataset).

    .venv/bin/python bench/beacon.py [--alleles 100000000] [--datasets 1000] [--queries 300]
    .venv/bin/python bench/beacon.py --keep [--queries 300]   # reuse the loaded database

Loading: each dataset's rows are built with numpy and sent with binary COPY into the
table with its indexes and foreign key dropped; the primary key (the btree lookups use)
and the BRIN index are then built once, as pg_restore does. The query mix is stored with
the data (table bench_beacon_query), so a --keep run asks the same queries.

Alleles: exactly --alleles / --datasets per dataset, half from a pool of shared sites (so
a common variant is in many datasets, as in real cohorts: a shared site is in ~125 of
1,000), half private to it; SNPs with AF from a Beta(0.3, 3) spectrum.
Queries: sequence queries, a third each on shared sites, private ones and absent ones.
For each query, interleaved (so that all see the same moments of a shared machine): the
bare lookup, g_variants with disclosure off, then with disclosure on as its first asker
(every drawn answer drawn and stored), as another network that asks it after (stored
answers; charged), and as the first network again (stored; free), after one untimed
lookup that brings the allele's pages into memory (all rows compare warm lookups). Each
network asks three queries (its budget, 5 per dataset, never runs out: the bench measures
latency, not refusals). The disclosure tables are emptied before timing.

Anchor, in the same run: the bare indexed lookup of the same alleles in SQL (the primary
key's btree on chrom, pos, ref, alt). Besides wall-clock percentiles, the mean CPU time a
request costs this process and its PostgreSQL backend (from /proc) is printed: on a
shared machine it is what a request costs whatever else runs. Target: g_variants p95
under 50 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATABASE = os.environ.get("BENCH_BEACON_DATABASE", "genemarket_bench_beacon")
CHROM_BASES = 150_000_000  # 22 pseudo-chromosomes of 150 Mb
CHROMS = 22
BASES = "ACGT"
DUO = ("DUO:0000042", "DUO:0000006", "DUO:0000007")
TABLE = "discovery_variantallele"
QUERIES = "bench_beacon_query"


def _binary_rows(np: Any, chrom, pos, ref, alt, kind, ac, an, source: int) -> bytes:
    """PostgreSQL binary COPY tuples (one-character alleles): 8 fields, big-endian."""
    n = len(pos)
    dtype = np.dtype(
        [
            ("fields", ">i2"),
            ("l_chrom", ">i4"), ("chrom", ">i2"),
            ("l_pos", ">i4"), ("pos", ">i4"),
            ("l_ac", ">i4"), ("ac", ">i4"),
            ("l_an", ">i4"), ("an", ">i4"),
            ("l_kind", ">i4"), ("kind", ">i2"),
            ("l_ref", ">i4"), ("ref", "S1"),
            ("l_alt", ">i4"), ("alt", "S1"),
            ("l_source", ">i4"), ("source", ">i4"),
        ]
    )  # fmt: skip
    rows = np.empty(n, dtype=dtype)
    rows["fields"] = 8
    for name, size in (("chrom", 2), ("pos", 4), ("ac", 4), ("an", 4), ("kind", 2)):
        rows[f"l_{name}"] = size
    rows["l_ref"] = rows["l_alt"] = 1
    rows["l_source"] = 4
    rows["chrom"], rows["pos"], rows["ac"], rows["an"], rows["kind"] = chrom, pos, ac, an, kind
    rows["ref"], rows["alt"], rows["source"] = ref, alt, source
    return rows.tobytes()


def populate(*, alleles: int, datasets: int) -> tuple[list[tuple[int, int, str, str]], float]:
    """The datasets (listed, one indexed file each) and their alleles; returns query
    alleles (shared, private and absent ones) and the load's seconds."""
    import numpy as np
    from django.db import connection

    from discovery.models import VariantSource
    from genomics.models import GenomicFile
    from marketplace.models import Dataset, Role, User
    from marketplace.selectors.committees import dac_default

    rng = np.random.default_rng(42)
    donors = User.objects.bulk_create(
        [User(username=f"donor{i}", role=Role.DONOR) for i in range(50)]
    )
    files = GenomicFile.objects.bulk_create(
        [
            GenomicFile(
                owner=donors[i % 50],
                filename=f"cohort{i}.vcf.gz",
                upload_length=1,
                state=GenomicFile.State.READY,
                format="VCF",
                payload_key=uuid.uuid4().hex,
                metadata={"reference_build": "GRCh38"},
            )
            for i in range(datasets)
        ]
    )
    committee = dac_default()  # what Dataset.save() sets; bulk_create does not call it
    listed = []
    for i in range(len(files)):
        code = DUO[i % len(DUO)]
        dataset = Dataset(
            donor=donors[i % 50],
            title=f"Cohort {i}",
            dac=committee,
            price=10**18,
            access_days=365,
            duo_codes=[{"code": code, "value": "MONDO:0005148" if code == DUO[2] else ""}],
            duo_index=f" {code} ",
            format_index=" VCF ",
            reference_index=" GRCh38 ",
            record_hash=uuid.uuid4().hex * 2,
        )
        dataset.refresh_consent_index()
        listed.append(dataset)
    Dataset.objects.bulk_create(listed)
    Dataset.files.through.objects.bulk_create(
        [
            Dataset.files.through(dataset_id=d.pk, genomicfile_id=f.pk)
            for d, f in zip(listed, files, strict=True)
        ]
    )
    sources = VariantSource.objects.bulk_create(
        [VariantSource(file=f, assembly="GRCh38") for f in files]
    )
    per_dataset = alleles // datasets
    shared_pool = rng.choice(CHROMS * CHROM_BASES, size=max(per_dataset * 4, 1000), replace=False)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT discovery_variantallele_source_fk")
        cursor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_pkey")
        cursor.execute("DROP INDEX discovery_variantallele_source_brin")
    connection.commit() if not connection.get_autocommit() else None
    columns = "chrom, pos, allele_count, allele_number, kind, ref, alt, source_id"
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    bases = np.array(list(BASES), dtype="S1")
    private_sites: list[int] = []
    for index, source in enumerate(sources):
        half = per_dataset // 2
        shared = rng.choice(shared_pool, size=half, replace=False)
        private = rng.integers(0, CHROMS * CHROM_BASES, size=per_dataset - half)
        # one allele per site and dataset; the allele is derived from the site, so a shared
        # site carries the same allele in every dataset that has it
        sites = np.unique(np.concatenate([shared, private]))
        while len(sites) < per_dataset:  # a private site drawn twice, or a shared one
            more = rng.integers(0, CHROMS * CHROM_BASES, size=per_dataset - len(sites))
            sites = np.unique(np.concatenate([sites, more]))
        ref_index = sites % 4
        alt_index = (ref_index + 1 + sites % 3) % 4
        an = np.full(len(sites), 2 * rng.integers(500, 5000))
        # allele frequencies from a neutral-like spectrum: many rare, some common
        ac = np.maximum(1, (an * rng.beta(0.3, 3.0, size=len(sites))).astype(np.int64))
        if index < 3:
            private_sites.extend(int(s) for s in private[:200])
        payload = _binary_rows(
            np,
            sites // CHROM_BASES + 1,
            sites % CHROM_BASES + 1,
            bases[ref_index],
            bases[alt_index],
            1,
            ac,
            an,
            source.pk,
        )
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN WITH (FORMAT binary)") as copy,
        ):
            copy.write(header + payload + struct.pack(">h", -1))
        if index % 100 == 99:
            done = (index + 1) * per_dataset
            rate = done / (time.perf_counter() - started)
            print(f"  {done:,} alleles copied ({rate:,.0f}/s)", flush=True)
    copied = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 2")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey "
            "PRIMARY KEY (chrom, pos, ref, alt, source_id)"
        )
        cursor.execute(
            f"CREATE INDEX discovery_variantallele_source_brin ON {TABLE} USING brin (source_id)"
        )
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT discovery_variantallele_source_fk "
            "FOREIGN KEY (source_id) REFERENCES discovery_variantsource (id) "
            "ON DELETE CASCADE NOT VALID"
        )
        cursor.execute(f"ANALYZE {TABLE}")
        cursor.execute("ANALYZE")
    total = time.perf_counter() - started
    print(f"copied in {copied:.0f} s; with the indexes built: {total:.0f} s")
    pick = random.Random(7)
    queries: list[tuple[int, int, str, str]] = []

    def allele(site: int) -> tuple[int, int, str, str]:
        r = site % 4
        return (
            site // CHROM_BASES + 1,
            site % CHROM_BASES + 1,
            BASES[r],
            BASES[(r + 1 + site % 3) % 4],
        )

    shared_sample = [int(s) for s in pick.sample(list(shared_pool[:100_000]), 200)]
    queries += [allele(s) for s in shared_sample]
    with connection.cursor() as cursor:  # private alleles as stored
        cursor.execute(
            f"SELECT chrom, pos, ref, alt FROM {TABLE} WHERE source_id = %s LIMIT 200",
            [sources[1].pk],
        )
        queries += [tuple(row) for row in cursor.fetchall()]
    queries += [
        (pick.randint(1, CHROMS), pick.randint(1, CHROM_BASES), "A", "C") for _ in range(200)
    ]
    pick.shuffle(queries)
    with connection.cursor() as cursor:  # the same mix for a later --keep run
        cursor.execute(f"CREATE TABLE {QUERIES} (n int, chrom int, pos int, ref text, alt text)")
        cursor.executemany(
            f"INSERT INTO {QUERIES} VALUES (%s, %s, %s, %s, %s)",
            [(n, *q) for n, q in enumerate(queries)],
        )
    return queries, total


def stored_queries() -> list[tuple[int, int, str, str]]:
    """The query mix the loading run drew (shared, private and absent alleles)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT chrom, pos, ref, alt FROM {QUERIES} ORDER BY n")
        return [tuple(r) for r in cursor.fetchall()]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alleles", type=int, default=100_000_000)
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--keep", action="store_true", help="reuse the loaded database of an earlier run"
    )
    args = parser.parse_args()
    from bench.support.common import django_scratch, recreate_database, table

    if args.keep:
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
    else:
        os.environ["DATABASE_URL"] = recreate_database(DATABASE)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    django_scratch()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    if args.keep:
        queries = stored_queries()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE}")
            loaded = cursor.fetchone()[0]
        print(f"reusing {loaded:,} alleles")
    else:
        queries, seconds = populate(alleles=args.alleles, datasets=args.datasets)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE}")
            loaded = cursor.fetchone()[0]
        print(f"{loaded:,} alleles across {args.datasets:,} datasets loaded in {seconds:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_size_pretty(pg_table_size('{TABLE}')), "
            f"pg_size_pretty(pg_indexes_size('{TABLE}')), count(*) FROM discovery_variantsource"
        )
        table_size, index_size, sources = cursor.fetchone()
    print(f"table {table_size}, indexes {index_size}, {sources} indexed files")
    queries = (queries * (1 + args.queries // max(len(queries), 1)))[: args.queries]

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = Path(f"/proc/{cursor.fetchone()[0]}/stat")
    ticks = os.sysconf("SC_CLK_TCK")

    def backend_cpu() -> float:
        """CPU seconds PostgreSQL's backend of this connection has used (same machine)."""
        fields = backend.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    def timed(action: Callable[[], object]) -> Sample:
        wall, cpu, database = time.perf_counter(), time.process_time(), backend_cpu()
        action()
        return Sample(
            time.perf_counter() - wall, time.process_time() - cpu, backend_cpu() - database
        )

    def bare(query: tuple[int, int, str, str]) -> Sample:
        def lookup() -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT source_id, allele_count, allele_number FROM {TABLE} "
                    "WHERE chrom = %s AND pos = %s AND ref = %s AND alt = %s",
                    list(query),
                )
                cursor.fetchall()

        return timed(lookup)

    client = Client()

    def beacon(address: str, query: tuple[int, int, str, str], *, disclosure: bool) -> Sample:
        chrom, pos, ref, alt = query
        settings.DISCLOSURE_ENABLED = disclosure
        params: dict[str, str | int] = {
            "referenceName": str(chrom),
            "start": pos - 1,
            "referenceBases": ref,
            "alternateBases": alt,
            "requestedGranularity": "count",
        }
        responses = []
        sample = timed(
            lambda: responses.append(
                client.get("/api/beacon/v2/g_variants", params, REMOTE_ADDR=address)
            )
        )
        assert responses[0].status_code == 200, responses[0].content[:300]
        return sample

    def network(group: int, index: int) -> str:
        """An address of the group's index-th network (a /24: one budget holder)."""
        return f"10.{group + index // 250}.{index % 250}.1"

    # Warm the connection, the caches and the disclosure code on alleles outside the mix,
    # then forget every answer and charge (of this warm-up or of an earlier --keep run).
    pick = random.Random(11)
    for i in range(20):
        warm = (pick.randint(1, CHROMS), pick.randint(1, CHROM_BASES), "G", "T")
        bare(warm)
        beacon(network(200, i), warm, disclosure=True)
        beacon(network(200, i), warm, disclosure=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE disclosure_releasedanswer, disclosure_budgetcharge, disclosure_budgetaccount"
        )
    timings: dict[str, list[Sample]] = {name: [] for name in ROWS}
    load_before = os.getloadavg()
    # Interleaved per query, so that all rows see the same moments of a shared machine.
    # Each network asks three queries (its budget is 5 per dataset: never refused), so
    # its charges in the window are read back as a real caller's would be.
    for i, query in enumerate(queries):
        first, second = network(1, i // 3), network(100, i // 3)
        # Untimed: the allele's index and table pages are read (from disk, the first time)
        # before any row is timed, so that none pays for it alone (10^8 alleles are ~9 GB).
        bare(query)
        timings["anchor"].append(bare(query))
        timings["off"].append(beacon(second, query, disclosure=False))
        timings["first"].append(beacon(first, query, disclosure=True))
        timings["stored"].append(beacon(second, query, disclosure=True))
        timings["repeat"].append(beacon(first, query, disclosure=True))
    load_after = os.getloadavg()
    settings.DISCLOSURE_ENABLED = True
    anchor_p50 = percentile([s.wall for s in timings["anchor"]], 0.5)
    rows = []
    for name, label in ROWS.items():
        walls = [s.wall for s in timings[name]]
        p50, p95 = percentile(walls, 0.5), percentile(walls, 0.95)
        python = sum(s.cpu for s in timings[name]) / len(walls)
        database = sum(s.database for s in timings[name]) / len(walls)
        rows.append(
            [
                label,
                f"{p50 * 1000:.2f} ms",
                f"{p95 * 1000:.2f} ms",
                f"{p50 / anchor_p50:.0f}",
                f"{p95 / anchor_p50:.0f}",
                f"{python * 1000:.1f} + {database * 1000:.1f} ms",
            ]
        )
    table(
        f"Beacon g_variants: {loaded:,} alleles across {sources:,} indexed datasets in "
        f"PostgreSQL, {len(queries)} sequence queries (a third each on shared, private and "
        f"absent alleles); load average {load_before[0]:.1f} before, {load_after[0]:.1f} after",
        [
            "query",
            "p50",
            "p95",
            "p50 / anchor p50",
            "p95 / anchor p50",
            "CPU a request, mean (Python + PostgreSQL)",
        ],
        rows,
    )
    for name in ("off", "first", "stored", "repeat"):
        verdict = "met" if percentile([s.wall for s in timings[name]], 0.95) < 0.050 else "NOT met"
        print(f"target g_variants p95 < 50 ms ({ROWS[name]}): {verdict}")


class Sample(NamedTuple):
    """One timed request: wall-clock seconds, and CPU seconds of this process and of its
    PostgreSQL backend (from /proc, in clock ticks of 10 ms: meaningful as a mean over
    many requests). CPU time is what a request costs whatever else the machine runs."""

    wall: float
    cpu: float
    database: float


ROWS = {
    "anchor": "bare indexed lookup (anchor)",
    "off": "g_variants, disclosure off",
    "first": "g_variants, first asking (an answer drawn and stored per rare/absent dataset)",
    "stored": "g_variants, asked before by another network (stored answers; charged)",
    "repeat": "g_variants, the same network again (stored answers; free)",
}


if __name__ == "__main__":
    main()
