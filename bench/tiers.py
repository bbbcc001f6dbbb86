"""A region tier's one-time cost (README "Selling regions"): the worker making a region
object of a bgzipped VCF (decrypt the stored file, htslib keeps the records of a 1 Mb
region, encrypt the slice under a fresh key, store it, index it), against the anchor of
the same selection on the plaintext file with no encryption at all, in the same run:

- `bcftools view -T regions.bed -Oz file.vcf.gz` (a streaming pass, no index: the same
  one sequential read our worker makes).

    .venv/bin/python bench/tiers.py [--size-mib 256]

The VCF (50 samples, one record per base of chr1) is bench/ingest.py's, generated once
into var/bench/ and reused. Needs bcftools and bgzip.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import generate
from bench.support.common import MIB, PROJECT, django_scratch, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args()
    source = generate(PROJECT / "var" / "bench" / f"ingest-{args.size_mib}.vcf.gz", args.size_mib)
    django_scratch()
    from bench.support.vault import stored_file
    from genomics.models import GenomicFile
    from genomics.services.region_objects import region_object_create

    plaintext = source.read_bytes()
    stored = stored_file(len(plaintext), filename="bench.vcf.gz", plaintext=plaintext)
    GenomicFile.objects.filter(pk=stored.pk).update(
        format="VCF", metadata={"format": "VCF", "compression": "bgzf", "contigs": ["chr1"]}
    )
    stored.refresh_from_db()
    # 1 Mb in the middle of what the file covers (one record per base from position 1).
    positions = subprocess.run(
        ["bcftools", "query", "-f", "%POS\n", str(source)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    records = int(positions.rsplit("\n", 2)[-2])
    middle = records // 2
    region = ("chr1", middle - 500_000, middle + 500_000)
    with tempfile.TemporaryDirectory() as folder:
        bed = Path(folder) / "region.bed"
        bed.write_text("\t".join(map(str, region)) + "\n")
        started = time.perf_counter()
        subprocess.run(
            ["bcftools", "view", "-T", str(bed), "-Oz", "-o", str(Path(folder) / "a.vcf.gz"),
             str(source)],
            check=True,
        )  # fmt: skip
        anchor_s = time.perf_counter() - started
        anchor_size = (Path(folder) / "a.vcf.gz").stat().st_size
    started = time.perf_counter()
    made = region_object_create(parent=stored, regions=[region])
    ours_s = time.perf_counter() - started
    table(
        f"Region object of a {len(plaintext) / MIB:.0f} MiB bgzipped VCF ({records:,} records),"
        " one 1 Mb region",
        ["what", "seconds", "ratio", "slice"],
        [
            ["bcftools view -T (plaintext, no crypto): anchor", f"{anchor_s:.1f}", "1.00",
             f"{anchor_size / MIB:.1f} MiB"],
            ["region object (decrypt, htslib slice, fresh key, store, index)", f"{ours_s:.1f}",
             f"{ours_s / anchor_s:.2f}", f"{(made.plaintext_size or 0) / MIB:.1f} MiB, "
             f"{made.metadata['records']:,} records"],
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
