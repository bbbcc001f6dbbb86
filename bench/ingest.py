"""Ingest end to end: a bgzipped VCF through the tus upload (HTTP, gunicorn), encryption
on arrival, then the worker's pass (decrypt, both checksums, format check, metadata),
against two anchors reading the same file in the same run:

- `bcftools query -f '%POS\n' file | wc -l`, the same work as our check: decompress, split
  every line and parse its eight fixed columns, without decoding a genotype (our check
  counts each line's columns but never parses a sample; bcftools query, asked for no
  sample field, tells htslib to skip the sample columns). This is the ratio's anchor.
- `bcftools view -H file | wc -l`, a full parse that decodes all 50 genotypes of every
  record (and `-G` does not avoid that: bcftools 1.16 parses them before dropping them),
  kept as a labelled second anchor.

    .venv/bin/python bench/ingest.py [--size-mib 1024]

The VCF (50 samples, random phased genotypes) is generated once into var/bench/ and
reused. Needs bcftools and bgzip (Debian `bcftools`, `tabix`; `make bench` installs them).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.common import MIB, PROJECT, django_scratch, start_gunicorn, table
from tests.support.processes import free_port

SAMPLES = 50
UPLOAD_CHUNK = 64 * MIB


def generate(path: Path, size_mib: int) -> Path:
    """A sorted, valid VCF.gz of about `size_mib` MiB (bgzip level 6, 2 threads)."""
    if path.exists() and path.stat().st_size >= size_mib * MIB * 0.95:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    pool = [
        "\t".join(rng.choice(("0|0", "0|1", "1|0", "1|1")) for _ in range(SAMPLES))
        for _ in range(4096)
    ]
    header = (
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=248956422>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
        + "\t".join(f"S{i}" for i in range(SAMPLES))
        + "\n"
    )
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        bgzip = subprocess.Popen(["bgzip", "-@", "2", "-c"], stdin=subprocess.PIPE, stdout=out)
        assert bgzip.stdin is not None
        bgzip.stdin.write(header.encode())
        position, target = 1, size_mib * MIB
        while True:
            lines = [
                f"chr1\t{position + i}\t.\tA\tG\t50\tPASS\t.\tGT\t{pool[(position + i) % 4096]}\n"
                for i in range(100_000)
            ]
            position += 100_000
            bgzip.stdin.write("".join(lines).encode())
            out.flush()
            if partial.stat().st_size >= target:
                break
        bgzip.stdin.close()
        bgzip.wait()
    partial.rename(path)
    return path


def upload(port: int, token: str, path: Path) -> str:
    """tus creation, then PATCH requests of 64 MiB read from the file."""
    size = path.stat().st_size
    headers = {"Authorization": f"Token {token}", "Tus-Resumable": "1.0.0"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request(
        "POST",
        "/api/v1/uploads/",
        headers={
            **headers,
            "Upload-Length": str(size),
            "Upload-Metadata": "filename YmVuY2gudmNmLmd6",
        },
    )
    response = connection.getresponse()
    response.read()
    if response.status != 201:
        raise RuntimeError(f"creation failed: {response.status}")
    location = response.getheader("Location", "").replace(f"http://127.0.0.1:{port}", "")
    offset = 0
    with path.open("rb") as source:
        while offset < size:
            chunk = source.read(UPLOAD_CHUNK)
            connection.request(
                "PATCH",
                location,
                body=chunk,
                headers={
                    **headers,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            response = connection.getresponse()
            response.read()
            if response.status != 204:
                raise RuntimeError(f"PATCH at {offset} failed: {response.status}")
            offset += len(chunk)
    return location.rsplit("/", 1)[1]


def anchor_seconds(command: list[str], stored) -> float:
    """Seconds for `command | wc -l`, checking it counted the records our ingest counted."""
    started = time.perf_counter()
    view = subprocess.Popen(command, stdout=subprocess.PIPE)
    counted = subprocess.run(
        ["wc", "-l"], stdin=view.stdout, capture_output=True, text=True, check=True
    )
    if view.wait() != 0:
        raise RuntimeError(f"{command[:2]} failed")
    seconds = time.perf_counter() - started
    assert int(counted.stdout) == stored.metadata["records"], (counted.stdout, stored.metadata)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    for tool in ("bcftools", "bgzip"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (Debian: bcftools, tabix); make bench installs it")
    vcf = generate(PROJECT / "var" / "bench" / f"ingest-{args.size_mib}.vcf.gz", args.size_mib)
    size = vcf.stat().st_size
    django_scratch()
    from rest_framework.authtoken.models import Token

    from bench.support.vault import archive_key, owner
    from genomics.models import GenomicFile
    from genomics.services.ingest import file_ingest

    archive_key()
    token = Token.objects.get_or_create(user=owner())[0].key
    port = free_port()
    server = start_gunicorn(port, "config.settings.test")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        started = time.perf_counter()
        file_id = upload(port, token, vcf)
        uploaded = time.perf_counter() - started
        stored = file_ingest(file_id=file_id)
        total = time.perf_counter() - started
    finally:
        os.killpg(server.pid, 15)
        server.wait()
    assert stored is not None and stored.state == GenomicFile.State.READY, stored and stored.error
    same_work = anchor_seconds(["bcftools", "query", "-f", "%POS\n", str(vcf)], stored)
    full_parse = anchor_seconds(["bcftools", "view", "-H", str(vcf)], stored)
    worker = total - uploaded
    rate = f"{size / total / 1e6:.0f} MB/s"
    rows = [
        ["tus upload + encryption", f"{uploaded:.1f} s", f"{size / uploaded / 1e6:.0f} MB/s"],
        ["worker's pass (decrypt, checksums, check)", f"{worker:.1f} s", ""],
        ["upload + ingest, end to end", f"{total:.1f} s", rate],
        [
            "anchor, same work: bcftools query -f '%POS\\n' | wc -l",
            f"{same_work:.1f} s",
            f"{size / same_work / 1e6:.0f} MB/s",
        ],
        [
            "full parse, all genotypes: bcftools view -H | wc -l",
            f"{full_parse:.1f} s",
            f"{size / full_parse / 1e6:.0f} MB/s",
        ],
        ["ratio (same-work anchor / ours, end to end)", "", f"{same_work / total:.2f}"],
        ["ratio (full parse / ours, end to end)", "", f"{full_parse / total:.2f}"],
    ]
    table(
        f"Ingest of a {size / MIB:,.0f} MiB VCF.gz ({stored.metadata['records']:,} variants, "
        f"{SAMPLES} samples)",
        ["step", "time", "rate (compressed bytes)"],
        rows,
    )


if __name__ == "__main__":
    main()
