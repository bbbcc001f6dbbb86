"""Catalogue search at scale: N datasets in PostgreSQL, searched through the API (the
whole Django and DRF stack in-process: middleware, serializer, pagination with its
count) with a text query and two filters.

    .venv/bin/python bench/catalogue.py [--datasets 100000] [--queries 300]

`duo` is a research purpose: the datasets whose consent it would fit, by the consent
matcher's rule, read from the tokens precomputed per dataset (migration 0013).

Anchor, in the same run: `GET /api/v1/datasets/{id}` (one primary-key lookup through the
same stack). Target: p95 under 50 ms. Needs the local PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Overridable so that two checkouts on one server do not drop each other's bench database.
DATABASE = os.environ.get("BENCH_CATALOGUE_DATABASE", "genemarket_bench_catalogue")


def _words(text: str) -> list[str]:
    return text.split()


DISEASES = _words(
    "cardiomyopathy diabetes asthma melanoma glioma leukemia lymphoma epilepsy autism "
    "schizophrenia alzheimer parkinson psoriasis lupus celiac crohn colitis obesity "
    "hypertension osteoporosis glaucoma cataract deafness anemia thalassemia"
)
WORDS = _words(
    "cohort family trio exome genome panel variants germline somatic tumour biobank "
    "population ancestry european african asian admixed paediatric adult sequencing "
    "array imputation phased structural copy number rare common"
)
# Descriptions draw on a wide vocabulary, as free text does: 5,000 distinct terms.
VOCABULARY = [f"term{chr(97 + i % 26)}{i // 26}" for i in range(5000)]
FORMATS = ("VCF", "BCF", "BAM", "CRAM", "FASTQ")
REFERENCES = ("GRCh37", "GRCh38", "T2T-CHM13")
DUO = ("DUO:0000042", "DUO:0000006", "DUO:0000007", "DUO:0000011", "DUO:0000004")
MODIFIERS = ("DUO:0000018", "DUO:0000021", "DUO:0000019", "DUO:0000046")
# Diseases of disease-specific consents (MONDO: type 2 diabetes, cystic fibrosis, melanoma).
DS_DISEASES = ("MONDO:0005148", "MONDO:0009061", "MONDO:0005105")


def populate(count: int) -> list[str]:
    """`count` listed datasets from 500 donors, inserted in bulk (the search does not
    depend on how they were listed); returns their ids."""
    from marketplace.models import Dataset, Role, User

    rng = random.Random(42)
    donors = User.objects.bulk_create(
        [
            User(username=f"donor{i}", role=Role.DONOR, public_name=f"Biobank {i}")
            for i in range(500)
        ]
    )
    ids = []
    batch = []
    for index in range(count):
        disease = rng.choice(DISEASES)
        words = rng.sample(WORDS, 4)
        fmt = rng.choice(FORMATS)
        codes = sorted({rng.choice(DUO), *rng.sample(MODIFIERS, rng.randint(0, 2))})
        duo_codes = [
            {"code": code, "value": rng.choice(DS_DISEASES) if code == "DUO:0000007" else ""}
            for code in codes
        ]
        dataset = Dataset(
            id=uuid.uuid4(),
            donor=donors[index % len(donors)],
            title=f"{disease.title()} {words[0]} {words[1]} {index}",
            description=" ".join(
                [f"A {words[2]} {words[3]} study of {disease}.", *rng.sample(VOCABULARY, 40)]
            ),
            price=rng.randint(1, 10**6) * 10**15,
            access_days=rng.choice((30, 90, 365)),
            review=rng.choice(("auto", "committee")),
            duo_codes=duo_codes,
            duo_index=" " + " ".join(codes) + " ",
            format_index=f" {fmt} ",
            reference_index=f" {rng.choice(REFERENCES)} ",
            metadata={"format": fmt, "records": rng.randint(10**3, 10**7)},
            record_hash=uuid.uuid4().hex * 2,
        )
        dataset.refresh_consent_index()  # what save() does; bulk_create does not call it
        batch.append(dataset)
        ids.append(str(dataset.id))
        if len(batch) == 5000:
            Dataset.objects.bulk_create(batch)
            batch = []
    Dataset.objects.bulk_create(batch)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE marketplace_dataset")
    return ids


def timed(client: Any, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    from bench.support.common import django_scratch, recreate_database, table

    os.environ["DATABASE_URL"] = recreate_database(DATABASE)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"

    django_scratch()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    started = time.perf_counter()
    ids = populate(args.datasets)
    print(f"{args.datasets} datasets inserted in {time.perf_counter() - started:.1f} s")
    rng = random.Random(7)
    client = Client()
    searches = []
    for _ in range(args.queries):
        q = f"{rng.choice(DISEASES)} {rng.choice(WORDS)}"
        url = (
            f"/api/v1/datasets?q={q.replace(' ', '+')}&format={rng.choice(FORMATS)}"
            f"&duo={rng.choice(DUO)}"
        )
        searches.append(url)
    for url in searches[:20]:  # warm the connection and the caches
        timed(client, url)
    anchor = [timed(client, f"/api/v1/datasets/{rng.choice(ids)}") for _ in range(args.queries)]
    search = [timed(client, url) for url in searches]
    plain = [
        timed(client, f"/api/v1/datasets?format={rng.choice(FORMATS)}&duo={rng.choice(DUO)}")
        for _ in range(args.queries // 3)
    ]
    anchor_p50 = percentile(anchor, 0.5)
    rows = []
    for name, values in (
        ("detail by id (anchor)", anchor),
        ("text + format + duo", search),
        ("format + duo, no text", plain),
    ):
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        rows.append(
            [name, f"{p50 * 1000:.1f} ms", f"{p95 * 1000:.1f} ms", f"{p95 / anchor_p50:.1f}"]
        )
    table(
        f"Catalogue search through the API: {args.datasets:,} datasets in PostgreSQL, "
        f"{args.queries} queries, page size 20",
        ["query", "p50", "p95", "p95 / anchor p50"],
        rows,
    )
    verdict = "met" if percentile(search, 0.95) < 0.050 else "NOT met"
    print(f"target p95 of text + two filters < 50 ms: {verdict}")


if __name__ == "__main__":
    main()
