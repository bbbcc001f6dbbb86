"""htsget over Crypt4GH on big files: bytes served, ticket latency, time to a decrypted slice.

(a) a BAM of >= 1 GiB with reads spread evenly over one chromosome, (b) a bgzipped VCF of
>= 1 GiB with records spread evenly over one chromosome; both generated once and cached under
/tmp/genemarket-bench/htsget/ (with their plaintext indexes, the anchors' input). Each is
stored encrypted as ingest stores it and indexed by the worker's code (file_index_build);
the ticketer runs as at `make run` (its Unix socket server, in a thread of this process
marked as the worker), and tickets are asked through the real view (Django's test client:
authentication, the live-grant check, the audit entry, the socket round trip).

For random 1 Mb regions:
- bytes served (header + segments) / (the region's minimal covering BGZF blocks + 2 x 64 KiB
  + the file's header blocks + the header): must be <= 1; and the bytes served beyond
  what the stream decrypts to (the file's header blocks, the blocks from the region's
  first overlapping record to its last, the EOF), which the ticket's layout costs: under
  64 KiB of padding, plus Crypt4GH's own header and 28 bytes a segment;
- ticket latency p50 / p95 (target p95 < 100 ms);
- time to the decrypted slice (ticket, every URL fetched, reference `crypt4gh` decryption)
  vs `samtools view -u` / `bcftools view -r -Ou` of the region on a local indexed plaintext
  file.

    .venv/bin/python bench/htsget.py [--size-mib 1024] [--regions 20]
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.common import MIB, django_scratch, table

CACHE = Path("/tmp/genemarket-bench/htsget")
CHROM_LENGTH = 248_956_422
REGION = 1_000_000
HEADER_BYTES_MAX = 1024  # a Crypt4GH header with two packets is ~250 bytes


def generate_bam(path: Path, size_mib: int) -> Path:
    """A sorted BAM of about `size_mib` MiB: 100 bp reads with random bases and qualities,
    evenly spread over chr1 (SAM text through `samtools view -b`, 2 threads)."""
    if path.exists() and path.stat().st_size >= size_mib * MIB:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    bases = [("".join(rng.choice("ACGT") for _ in range(100))) for _ in range(4096)]
    quals = [("".join(chr(33 + rng.randrange(2, 41)) for _ in range(100))) for _ in range(4096)]
    reads = int(size_mib * MIB / 108)  # measured: ~114 compressed bytes a read, so past size
    step = (CHROM_LENGTH - 200) / reads
    partial = path.with_suffix(".partial")
    samtools = subprocess.Popen(
        ["samtools", "view", "-b", "-@", "2", "-o", str(partial), "-"], stdin=subprocess.PIPE
    )
    assert samtools.stdin is not None
    samtools.stdin.write(f"@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:{CHROM_LENGTH}\n".encode())
    batch = 100_000
    for first in range(0, reads, batch):
        lines = [
            f"r{i}\t0\tchr1\t{int(i * step) + 1}\t60\t100M\t*\t0\t0\t"
            f"{bases[i % 4096]}\t{quals[(i * 7) % 4096]}\n"
            for i in range(first, min(first + batch, reads))
        ]
        samtools.stdin.write("".join(lines).encode())
    samtools.stdin.close()
    if samtools.wait() != 0:
        raise RuntimeError("samtools view failed")
    partial.rename(path)
    return path


VCF_SAMPLES = 50


def generate_vcf(path: Path, size_mib: int) -> Path:
    """A sorted bgzipped VCF of a bit over `size_mib` MiB: biallelic SNVs with 50 samples'
    random phased genotypes, spread evenly over the whole of chr1 (a record every ~6 bp at
    1 GiB, about gnomAD's density). The records' spacing comes from their compressed size,
    measured on a sample with zlib at bgzip's level; the text goes through a pipe to
    htslib's `bgzip -@ 2` (BGZF blocks as htslib writes them), Python only formats lines."""
    if path.exists() and path.stat().st_size >= size_mib * MIB:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    alleles = [("A", "G"), ("C", "T"), ("G", "A"), ("T", "C"), ("A", "C"), ("G", "T")]
    tails = [
        f"\t.\t{alleles[i % 6][0]}\t{alleles[i % 6][1]}\t50\tPASS\t.\tGT\t"
        + "\t".join(rng.choice(("0|0", "0|1", "1|0", "1|1")) for _ in range(VCF_SAMPLES))
        + "\n"
        for i in range(4096)
    ]
    header = (
        f"##fileformat=VCFv4.2\n##contig=<ID=chr1,length={CHROM_LENGTH}>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
        + "\t".join(f"S{i}" for i in range(VCF_SAMPLES))
        + "\n"
    )
    sample = "".join(f"chr1\t{7 * i + 1}{tails[i & 4095]}" for i in range(50_000)).encode()
    per_record = (
        sum(
            len(zlib.compress(sample[at : at + 65280], 6)) + 26
            for at in range(0, len(sample), 65280)
        )
        / 50_000
    )
    records = int(size_mib * MIB / per_record)  # htslib (libdeflate) writes ~5% more than zlib
    step = (CHROM_LENGTH - 1000) / records
    if step < 1:
        raise ValueError(f"{size_mib} MiB of records does not fit on one chromosome")
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        bgzip = subprocess.Popen(["bgzip", "-@", "2", "-c"], stdin=subprocess.PIPE, stdout=out)
        assert bgzip.stdin is not None
        bgzip.stdin.write(header.encode())
        batch = 200_000
        for first in range(0, records, batch):
            bgzip.stdin.write(
                "".join(
                    [
                        f"chr1\t{int(i * step) + 1}{tails[i & 4095]}"
                        for i in range(first, min(first + batch, records))
                    ]
                ).encode()
            )
        bgzip.stdin.close()
        if bgzip.wait() != 0:
            raise RuntimeError("bgzip failed")
    partial.rename(path)
    return path


def minimal_bytes(
    path: Path, kind: str, region: tuple[str, int, int], blocks: list[int], size: int
) -> int:
    """The region's minimal covering BGZF blocks: from the block holding its first record
    to the end of the block holding its last (pysam on the local indexed plaintext; the
    last record is looked for in the region's last kilobase, records being dense)."""
    import pysam

    from genomics.htsindex import block_end

    name, start, end = region
    opener = pysam.AlignmentFile if kind == "BAM" else pysam.VariantFile
    with opener(str(path)) as handle:
        first = last = None
        for _ in handle.fetch(name, start, end):
            first = handle.tell() >> 16
            break
        for _ in handle.fetch(name, max(start, end - 1000), end):
            last = handle.tell()
    if first is None or last is None:
        return 0
    end_block = last >> 16
    stop = block_end(blocks, end_block, size) if last & 0xFFFF else end_block
    return stop - first


def anchor_seconds(path: Path, kind: str, region: str, out: Path) -> float:
    # Uncompressed output (-u / -Ou): the tools' cheapest way to write the slice, so the
    # ratio is not flattered by their compression time.
    argv = (
        ["samtools", "view", "-u", "-o", str(out), str(path), region]
        if kind == "BAM"
        else ["bcftools", "view", "-r", region, "-Ou", "-o", str(out), str(path)]
    )
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started


def run(kind: str, path: Path, regions: int, researcher, secret: bytes, scratch: Path) -> list:
    from crypt4gh import lib as reference
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from bench.support.vault import stored_file
    from genomics.models import FileIndex
    from genomics.services.grants import grant_create
    from genomics.services.indexes import BlockMap, file_index_build
    from marketplace.models import AccessRequest, Dataset

    stored = stored_file(
        path.stat().st_size,
        filename=path.name,
        source=path,
        file_format=kind,
        metadata={"compression": "bgzf"},
    )
    started = time.perf_counter()
    file_index_build(file_id=str(stored.pk))
    index_s = time.perf_counter() - started
    index_row = FileIndex.objects.get(file=stored)
    local_index = Path(str(path) + (".bai" if kind == "BAM" else ".tbi"))
    if not local_index.exists():
        tool = ["samtools", "index"] if kind == "BAM" else ["bcftools", "index", "-t"]
        subprocess.run([*tool, str(path)], check=True)
    started = time.perf_counter()
    tool = ["samtools", "index", "-o"] if kind == "BAM" else ["bcftools", "index", "-t", "-o"]
    subprocess.run([*tool, str(scratch / f"anchor-{kind}.idx"), str(path)], check=True)
    anchor_index_s = time.perf_counter() - started

    dataset = Dataset.objects.create(donor=stored.owner, title=kind, price=1, access_days=30)
    dataset.files.set([stored])
    from datetime import timedelta

    from django.utils import timezone

    AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        statement="bench",
        amount=1,
        state=AccessRequest.State.GRANTED,
        granted_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=1),
    )
    grant_create(file=stored, recipient_public_key=bytes(researcher.crypt4gh_public_key))
    token = Token.objects.get_or_create(user=researcher)[0].key
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    endpoint = "reads" if kind == "BAM" else "variants"

    from genomics.archive_secret import archive_secret_key
    from genomics.services.indexes import file_index_read

    _, block_map = file_index_read(index=index_row, secret=archive_secret_key(stored.archive_key))
    assert isinstance(block_map, BlockMap)
    header_blocks = block_map.header_end >> 16
    rng = random.Random(11)
    latencies, ratios, ours, anchors, beyond = [], [], [], [], []
    served_total = 0
    for number in range(regions + 1):
        start = rng.randrange(0, CHROM_LENGTH - REGION)  # both files span all of chr1
        region = f"chr1:{start + 1}-{start + REGION}"
        began = time.perf_counter()
        answer = client.get(
            f"/ga4gh/htsget/v1/{endpoint}/{stored.pk}",
            {"referenceName": "chr1", "start": str(start), "end": str(start + REGION)},
        )
        ticketed = time.perf_counter()
        assert answer.status_code == 200, answer.content
        stream = io.BytesIO()
        for item in answer.json()["htsget"]["urls"]:
            if item["url"].startswith("data:"):
                stream.write(base64.b64decode(item["url"].split(",", 1)[1]))
                continue
            headers = {f"HTTP_{k.upper()}": v for k, v in item["headers"].items()}
            got = Client().get(item["url"], **headers)
            for piece in got.streaming_content:  # type: ignore[attr-defined]
                stream.write(piece)
        served = stream.tell()
        stream.seek(0)
        out = scratch / f"slice-{number}"
        with out.open("wb") as target:
            reference.decrypt([(0, secret, None)], stream, target)
        finished = time.perf_counter()
        if number == 0:
            continue  # warm-up: the ticketer's first read of the index
        latencies.append(ticketed - began)
        beyond.append(served - out.stat().st_size)
        ours.append(finished - began)
        anchors.append(anchor_seconds(path, kind, region, scratch / "anchor-out"))
        minimal = minimal_bytes(
            path, kind, ("chr1", start, start + REGION), block_map.blocks, block_map.size
        )
        bound = minimal + 2 * 65536 + header_blocks + HEADER_BYTES_MAX
        ratios.append(served / bound)
        served_total += served
    latencies.sort()
    p95 = latencies[max(int(len(latencies) * 0.95) - 1, 0)]
    return [
        kind,
        f"{path.stat().st_size / MIB:.0f} MiB",
        f"{index_s:.1f} s ({index_s / anchor_index_s:.2f}x)",
        f"{served_total / len(ratios) / MIB:.1f} MiB",
        f"{max(ratios):.4f}",
        f"{max(beyond) / 1024:.1f} KiB",
        f"{statistics.median(latencies) * 1000:.1f} / {p95 * 1000:.1f} ms",
        f"{statistics.median(ours):.2f} s / {statistics.median(anchors):.2f} s "
        f"= {statistics.median(ours) / statistics.median(anchors):.1f}x",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--files", default="bam,vcf", help="which of bam,vcf to measure")
    args = parser.parse_args()
    wanted = set(args.files.split(","))
    bam = (
        generate_bam(CACHE / f"reads-{args.size_mib}.bam", args.size_mib)
        if "bam" in wanted
        else None
    )
    vcf = (
        generate_vcf(CACHE / f"variants-chr1-{args.size_mib}.vcf.gz", args.size_mib)
        if "vcf" in wanted
        else None
    )
    scratch = django_scratch()
    os.environ["HTSGET_TICKETER_SOCKET"] = str(scratch / "ticketer.sock")
    from django.conf import settings

    settings.HTSGET_TICKETER_SOCKET = str(scratch / "ticketer.sock")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    from bench.support.vault import archive_key
    from genomics import c4gh, ticketer
    from marketplace.models import Role, User

    archive_key()  # marks this process as the worker (the ticketer thread reads the key)
    threading.Thread(target=ticketer.serve, daemon=True).start()
    while not Path(settings.HTSGET_TICKETER_SOCKET).exists():
        time.sleep(0.05)
    secret, public = c4gh.generate_keypair()
    researcher = User.objects.create(
        username="bench-researcher", role=Role.RESEARCHER, crypt4gh_public_key=public
    )
    work = Path(tempfile.mkdtemp(prefix="genemarket-bench-htsget-"))
    rows = []
    if bam is not None:
        rows.append(run("BAM", bam, args.regions, researcher, secret, work))
    if vcf is not None:
        rows.append(run("VCF", vcf, args.regions, researcher, secret, work))
    table(
        f"htsget over Crypt4GH, {args.regions} random 1 Mb regions per file",
        [
            "file",
            "size",
            "index at ingest (vs samtools/bcftools index)",
            "served per region",
            "served / (min blocks + 2x64 KiB + header), max",
            "served - decrypted, max",
            "ticket p50 / p95",
            "decrypted slice vs local view -r (median)",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
