"""A region tier's one-time cost (README "Selling regions"): the worker making a region
object of a bgzipped VCF (read and decrypt only the Crypt4GH segments that hold the header,
the blocks the file's index gives for the region and the EOF; htslib keeps the records
that overlap; encrypt the slice under a fresh key, store it, index it), for regions of
several sizes, against anchors measured in the same run on the plaintext file with no
encryption at all, for the same region:

- `bcftools view -R region.bed -Oz file.vcf.gz` with the file's tabix index (made before
  timing, as ingest makes ours): the same index-driven selection, O(slice). The ratios
  are against it.
- `bcftools view -T region.bed -Oz file.vcf.gz`: a streaming pass over the whole file,
  O(file) (the anchor of the earlier figures).

The row "whole pass" makes the same region object as a file without index is sliced
(one sequential pass over the whole payload: the fallback), to show what the index saves.
"read" is the parent's payload bytes read from storage (and decrypted), counted in the run;
each region object's record count is checked against both bcftools selections.

    .venv/bin/python bench/tiers.py [--size-mib 256] [--regions-kb 10,1000] [--no-whole-pass]

The VCF (50 samples, one record per base of chr1, compressed by `bgzip`) is
bench/ingest.py's, generated once into var/bench/ and reused. Needs bcftools, bgzip, tabix.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import generate
from bench.support.common import MIB, PROJECT, django_scratch, table


def _bcftools(option: str, bed: Path, source: Path, folder: Path) -> tuple[float, int, int]:
    """Seconds, output size and record count of `bcftools view <option> bed -Oz`."""
    out = folder / f"anchor{option}.vcf.gz"
    started = time.perf_counter()
    subprocess.run(
        ["bcftools", "view", option, str(bed), "-Oz", "-o", str(out), str(source)], check=True
    )
    seconds = time.perf_counter() - started
    count = subprocess.run(
        ["bcftools", "view", "-H", str(out)], check=True, capture_output=True
    ).stdout.count(b"\n")
    return seconds, out.stat().st_size, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument(
        "--regions-kb", default="10,1000", help="region sizes in kb, comma-separated"
    )
    parser.add_argument(
        "--no-whole-pass", action="store_true", help="skip the whole-pass (fallback) rows"
    )
    args = parser.parse_args()
    sizes = [int(float(kb) * 1000) for kb in args.regions_kb.split(",")]
    source = generate(PROJECT / "var" / "bench" / f"ingest-{args.size_mib}.vcf.gz", args.size_mib)
    django_scratch()
    from bench.support.vault import stored_file
    from genomics import payloads
    from genomics.models import FileIndex, GenomicFile
    from genomics.services import region_objects
    from genomics.services.indexes import file_index_build

    plaintext = source.read_bytes()

    def stored(name: str) -> Any:
        made = stored_file(len(plaintext), filename=name, plaintext=plaintext)
        GenomicFile.objects.filter(pk=made.pk).update(
            format="VCF", metadata={"format": "VCF", "compression": "bgzf", "contigs": ["chr1"]}
        )
        made.refresh_from_db()
        return made

    parent = stored("bench.vcf.gz")
    started = time.perf_counter()
    file_index_build(file_id=str(parent.pk))  # what ingest does once per file
    index_s = time.perf_counter() - started
    assert FileIndex.objects.filter(file=parent).exists()
    unindexed = stored("bench-unindexed.vcf.gz") if not args.no_whole_pass else None

    read: dict[str, int] = {}
    read_range = payloads.read_range

    def counting(parts: Any, start: int, end: int, *rest: Any) -> Any:
        for chunk in read_range(parts, start, end, *rest):
            key = parts[0][2].split("/")[1] if parts else ""
            read[key] = read.get(key, 0) + len(chunk)
            yield chunk

    payloads.read_range = counting  # type: ignore[assignment]  # counts the parents' reads

    def make(file: Any, region: tuple[str, int, int], whole_pass: bool) -> tuple[float, Any]:
        read.clear()
        original = region_objects._parent_index
        if whole_pass:  # as for a file that cannot have an index
            region_objects._parent_index = lambda parent: None
        try:
            started = time.perf_counter()
            made = region_objects.region_object_create(parent=file, regions=[region])
            return time.perf_counter() - started, made
        finally:
            region_objects._parent_index = original

    # The middle of what the file covers (one record per base from position 1).
    positions = subprocess.run(
        ["bcftools", "query", "-f", "%POS\n", str(source)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    records = int(positions.rsplit("\n", 2)[-2])
    middle = records // 2
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        indexed = folder / "file.vcf.gz"
        indexed.symlink_to(source)
        subprocess.run(["tabix", "-p", "vcf", str(indexed)], check=True)
        for size in sizes:
            region = ("chr1", middle - size // 2, middle + size // 2)
            bed = folder / f"r{size}.bed"
            bed.write_text("\t".join(map(str, region)) + "\n")
            stream_s, _, stream_count = _bcftools("-T", bed, source, folder)
            anchor_s, anchor_size, anchor_count = _bcftools("-R", bed, indexed, folder)
            ours_s, made = make(parent, region, whole_pass=False)
            ours_read = read.get(parent.payload_key, 0)
            assert made.metadata["records"] == anchor_count == stream_count
            kb = f"{size // 1000} kb"
            slice_size = f"{(made.plaintext_size or 0) / MIB:.2f} MiB"
            rows.append(
                [
                    f"{kb}: bcftools view -T (whole-file stream, no crypto)",
                    f"{stream_s:.2f}",
                    f"{stream_s / anchor_s:.2f}",
                    f"{len(plaintext) / MIB:.2f} MiB",
                    f"{made.metadata['records']:,} records",
                ]
            )
            rows.append(
                [
                    f"{kb}: bcftools view -R (index, no crypto): anchor",
                    f"{anchor_s:.2f}",
                    "1.00",
                    "",
                    f"{anchor_size / MIB:.2f} MiB (bcftools)",
                ]
            )
            rows.append(
                [
                    f"{kb}: region object (index: covering segments only)",
                    f"{ours_s:.2f}",
                    f"{ours_s / anchor_s:.2f}",
                    f"{ours_read / MIB:.2f} MiB",
                    slice_size,
                ]
            )
            if unindexed is not None:
                pass_s, passed = make(unindexed, region, whole_pass=True)
                assert passed.plaintext_sha256 == made.plaintext_sha256
                rows.append(
                    [
                        f"{kb}: region object (whole pass: the fallback)",
                        f"{pass_s:.2f}",
                        f"{pass_s / anchor_s:.2f}",
                        f"{read.get(unindexed.payload_key, 0) / MIB:.2f} MiB",
                        "the same bytes",
                    ]
                )
    table(
        f"Region objects of a {len(plaintext) / MIB:.0f} MiB bgzipped VCF ({records:,} records,"
        f" 50 samples); its index took {index_s:.1f} s at ingest, not counted",
        ["what", "seconds", "ratio", "read", "slice"],
        rows,
    )


if __name__ == "__main__":
    main()
