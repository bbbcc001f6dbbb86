"""Load: 200 concurrent users browsing, searching and downloading for five minutes,
against gunicorn (gthread) on PostgreSQL with Redis as the shared cache; locust headless.

    .venv/bin/python bench/load.py [--users 200] [--minutes 5]

Searches are drawn from 10,000 distinct strings (diseases, study words, free-text terms of
the descriptions, and pairs of them) by a Zipf law (the string of rank r is drawn with
weight 1/r), as real search logs are long-tailed: a few searches are common, most are
rare. The catalogue result cache's hit rate over the run is printed (hits and misses
counted by every gunicorn worker, `marketplace.web.results_cache.COUNTS`, written as it
exits), so the latency figures say how much of them the cache served.

`CATALOGUE_CACHE_S=0` in the environment measures the catalogue without its result cache.
Printed per request kind: requests, errors, p50/p95/p99 and throughput, and each p99 as a
ratio to the p99 of a static file served by the same process in the same run (the
anchor). Target: no errors, catalogue pages p99 under 500 ms. One machine plays every
user, so the per-address rate limits are lifted for the run. Needs PostgreSQL and Redis.

Environment: BENCH_LOAD_DATABASE (default genemarket_bench_load, dropped and made again)
and BENCH_LOAD_CACHE_URL (default redis://127.0.0.1:6379/14) keep two checkouts on one
server apart; LOCUST names a locust executable installed elsewhere (default: the one
beside this Python, which `make bench` installs from requirements-bench.txt).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.common import MIB, PROJECT, recreate_database, table
from tests.support.processes import free_port, port_open, wait_until

# Overridable so that two checkouts on one server do not drop each other's database or
# share each other's cache.
DATABASE = os.environ.get("BENCH_LOAD_DATABASE", "genemarket_bench_load")
CACHE_URL = os.environ.get("BENCH_LOAD_CACHE_URL", "redis://127.0.0.1:6379/14")
DATASETS = 2000
GRANTS = 20
SEARCHES = 10_000
ZIPF_EXPONENT = 1.0
WARM_LISTS = 24  # result-list views made by warm(): 12 rounds of 2 catalogue pages


def search_strings(count: int) -> list[str]:
    """`count` distinct search strings in rank order (most searched first): the words the
    catalogue's datasets are made of, alone and in pairs, shuffled with a fixed seed so
    the common ones are not all diseases."""
    import random

    from bench.catalogue import DISEASES, VOCABULARY, WORDS

    single = [*DISEASES, *WORDS, *VOCABULARY]
    pairs = [f"{a} {b}" for a in DISEASES for b in [*WORDS, *VOCABULARY[:400]]]
    strings = list(dict.fromkeys([*single, *pairs]))
    assert len(strings) >= count, len(strings)
    random.Random(7).shuffle(strings)
    return strings[:count]


def prepare(scratch: Path) -> dict[str, object]:
    """Datasets to browse, and researchers with a live grant on a real 1 MiB file."""
    from rest_framework.authtoken.models import Token

    from bench.catalogue import populate
    from bench.support.vault import owner, stored_file
    from genomics import c4gh
    from genomics.services.grants import grant_create
    from marketplace.models import AccessRequest, Dataset, Role, User
    from marketplace.services.datasets import dataset_create

    datasets = populate(DATASETS)
    stored = stored_file(MIB, filename="load.vcf")
    donor = owner()
    stored.metadata = {"format": "VCF", "reference_build": "GRCh38"}
    stored.format = "VCF"
    stored.plaintext_sha256 = "0" * 64
    stored.save()
    dataset = dataset_create(
        donor=donor,
        title="Load test exome cohort",
        description="Exomes for the load test.",
        files=[stored.pk],
        duo_codes=["DUO:0000042"],
        price="1000",
        access_days=30,
        review="auto",
    )
    grants = []
    for index in range(GRANTS):
        researcher = User.objects.create(username=f"load-researcher-{index}", role=Role.RESEARCHER)
        _, public = c4gh.generate_keypair()
        researcher.crypt4gh_public_key = public
        researcher.save()
        grant_create(file=stored, recipient_public_key=public)
        request = AccessRequest.objects.create(
            dataset=dataset,
            researcher=researcher,
            purpose_codes=[{"code": "DUO:0000042", "value": ""}],
            statement="Load.",
            amount=1000,
            state=AccessRequest.State.GRANTED,
            duo_match={"fits": True},
        )
        from datetime import timedelta

        from django.utils import timezone

        AccessRequest.objects.filter(pk=request.pk).update(
            granted_at=timezone.now(), expires_at=timezone.now() + timedelta(days=30)
        )
        grants.append(
            {
                "token": Token.objects.create(user=researcher).key,
                "request": str(request.pk),
                "url": f"/api/v1/access-requests/{request.pk}/files/{stored.pk}",
            }
        )
    assert Dataset.objects.count() == DATASETS + 1
    searches = search_strings(SEARCHES)
    # Cumulative Zipf weights, so the crowd draws with random.choices(cum_weights=...).
    cumulative, total = [], 0.0
    for rank in range(1, len(searches) + 1):
        total += 1 / rank**ZIPF_EXPONENT
        cumulative.append(total)
    plan = {
        "datasets": [*datasets[:500], str(dataset.pk)],
        "grants": grants,
        "searches": searches,
        "search_weights": cumulative,
    }
    (scratch / "plan.json").write_text(json.dumps(plan))
    return plan


def warm(port: int) -> None:
    """A few rounds of every page before the clock starts: each worker thread opens its
    database connection and fills its caches, as a server that has been up would have."""
    import urllib.request

    plan = json.loads((Path(os.environ["VAR_DIR"]) / "plan.json").read_text())
    paths = ["/datasets/", "/datasets/?q=exome&format=VCF", "/api/v1/datasets?q=cohort"]
    paths += [f"/datasets/{d}/" for d in plan["datasets"][:5]]
    for _ in range(12):
        for path in paths:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as answer:
                answer.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = recreate_database(DATABASE)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"
    os.environ.update(
        DEBUG="false",
        CACHE_URL=CACHE_URL,
        THROTTLE_ANON="10000000/minute",
        THROTTLE_USER="10000000/minute",
        LOG_LEVEL="WARNING",
    )
    from bench.support.common import django_scratch

    scratch = django_scratch("config.settings.dev")
    prepare(scratch)
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "3",
            "--threads",
            "8",
            "--worker-class",
            "gthread",
            "--preload",
            # Longer than a user's pause between requests: otherwise the server closes an
            # idle keep-alive connection just as the client reuses it (connection reset).
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
            "--config",
            str(PROJECT / "bench" / "support" / "gunicorn_cache_counts.py"),
        ],
        cwd=PROJECT,
        env={**os.environ},
        start_new_session=True,
    )
    try:
        wait_until(lambda: port_open(port), timeout_s=30, what="gunicorn")
        warm(port)
        prefix = scratch / "locust"
        seconds = int(args.minutes * 60)
        started = time.monotonic()
        subprocess.run(
            [
                # LOCUST: a locust installed elsewhere (its own virtualenv), else the project's.
                os.environ.get("LOCUST", str(Path(sys.executable).with_name("locust"))),
                "-f",
                str(PROJECT / "bench" / "locustfile.py"),
                "--headless",
                "--users",
                str(args.users),
                "--spawn-rate",
                "50",
                "--run-time",
                f"{seconds}s",
                "--host",
                f"http://127.0.0.1:{port}",
                "--csv",
                str(prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            env={**os.environ, "LOAD_PLAN": str(scratch / "plan.json")},
            check=False,
        )
        elapsed = time.monotonic() - started
    finally:
        os.killpg(server.pid, 15)
        server.wait()
    report(prefix, args.users, elapsed, cache_counts(scratch))


def cache_counts(scratch: Path) -> dict[str, int]:
    """Hits and misses of the catalogue result cache, summed over the gunicorn workers."""
    counts = {"hits": 0, "misses": 0}
    files = sorted(scratch.glob("cache-counts-*.json"))
    if not files:
        raise RuntimeError("no gunicorn worker wrote its cache counts")
    for path in files:
        for key, value in json.loads(path.read_text()).items():
            counts[key] += value
    return counts


def report(prefix: Path, users: int, elapsed: float, counts: dict[str, int]) -> None:
    with open(f"{prefix}_stats.csv", newline="") as handle:  # noqa: PTH123
        rows = list(csv.DictReader(handle))
    by_name = {row["Name"]: row for row in rows}
    anchor = float(by_name["anchor: static file"]["99%"] or 1)
    lines = []
    for row in rows:
        count, failures = int(row["Request Count"]), int(row["Failure Count"])
        lines.append(
            [
                row["Name"],
                f"{count:,}",
                f"{failures} ({failures / max(count, 1):.2%})",
                f"{row['50%']} ms",
                f"{row['95%']} ms",
                f"{row['99%']} ms",
                f"{float(row['Requests/s']):.1f}/s",
                f"{float(row['99%'] or 0) / anchor:.1f}" if row["Name"] != "Aggregated" else "",
            ]
        )
    table(
        f"Load: {users} users for {elapsed / 60:.1f} min, gunicorn gthread 3x8, PostgreSQL, "
        f"Redis cache, catalogue result cache {os.environ.get('CATALOGUE_CACHE_S', '30')} s; "
        f"anchor: static file p99 {anchor:.0f} ms",
        ["request", "count", "errors", "p50", "p95", "p99", "throughput", "p99 / anchor"],
        lines,
    )
    views = counts["hits"] + counts["misses"]
    rate = f"{counts['hits'] / views:.1%}" if views else "n/a (cache off)"
    print(
        f"catalogue result cache: {rate} hits ({counts['hits']:,} hits, {counts['misses']:,} "
        f"misses, over {SEARCHES:,} distinct searches drawn by Zipf s={ZIPF_EXPONENT}; "
        f"includes the {WARM_LISTS} warm-up views)"
    )
    total = by_name["Aggregated"]
    pages = [by_name[n] for n in ("page: catalogue", "page: catalogue search") if n in by_name]
    worst = max(float(p["99%"] or 0) for p in pages)
    ok = int(total["Failure Count"]) == 0 and worst < 500
    print(f"target 0 errors and catalogue p99 < 500 ms: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
