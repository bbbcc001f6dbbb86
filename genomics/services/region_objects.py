"""Region objects (worker): the records of a file that fall in a set of regions, written by
htslib as a new file of the same format and stored as its own Crypt4GH object under a
FRESH data key (README "Selling regions").

Why its own object: every grant of a file is a header holding that file's one data key, so
a researcher granted a region of the shared payload could open any other segment of it
obtained elsewhere (a colleague's download, a leaked payload). A region object shares no
key with its parent: a grant of it opens its bytes and nothing of the full file.

Why an htslib-written file of exactly the regions' records (plus the parent's header),
rather than the parent's BGZF blocks that cover the regions: whole blocks carry up to
64 KiB of neighbouring records on each side of every region, data the donor did not sell;
htslib's slice holds no record outside the regions, and every reader (bcftools, samtools,
htsget clients) reads it as an ordinary file. Its bytes differ from the parent's, so it gets
its own plaintext SHA-256, recorded like an ingested file's.

Made once per scope (parent, regions): the unique (parent, regions_sha256) makes a second
tier with the same regions reuse it, and a redelivered task finish or redo it. Cost: one
pass over the parent's payload (sequential read; no index is needed) plus the slice's
encryption, once at listing time, never per buyer. Plaintext stays in memory and OS pipes.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath

import pysam
from django.db import IntegrityError, transaction
from django.utils import timezone

from genomics import c4gh, htsindex, payloads
from genomics.archive_secret import archive_secret_key
from genomics.formats.stream import through_pipe
from genomics.models import ArchiveKey, GenomicFile, PayloadPart
from genomics.regions import Region, regions_sha256
from genomics.services.indexes import file_index_build

logger = logging.getLogger(__name__)

# (format, compression) -> (pysam write mode, file name ending) of the formats htslib reads
# by coordinate and writes back in the same format.
SLICEABLE = {
    ("VCF", "bgzf"): ("wz", ".vcf.gz"),
    ("BCF", "bgzf"): ("wb", ".bcf"),
    ("BAM", "bgzf"): ("wb", ".bam"),
}
PART_TARGET = 8 * 1024 * 1024


class RegionSliceRefused(ValueError):
    """The file cannot be sold by region; the message says why and what to do."""


def region_refusal(file: GenomicFile) -> str | None:
    """Why `file` cannot be sliced by region, in words for its donor; None if it can."""
    compression = str((file.metadata or {}).get("compression", ""))
    # A file read out of a ZIP is stored as the ZIP, whatever its member's compression.
    if (file.format, compression) in SLICEABLE and not (file.metadata or {}).get("container"):
        return None
    if file.format == "VCF":
        return (
            f"{file.filename} is a plain (not bgzipped) VCF, which cannot be sold by region: "
            "have the vault store it bgzipped (My files: Store bgzipped), or compress it with "
            "`bgzip` and upload the .vcf.gz."
        )
    if file.format == "CRAM":
        return (
            f"{file.filename} is CRAM, which cannot be sold by region here yet (its slices "
            "need the reference sequence): convert it to BAM with `samtools view -b`."
        )
    return (
        f"{file.filename} is {file.format or 'of an unknown format'}, which has no genomic "
        "coordinates to select by: only bgzipped VCF, BCF and BAM can be sold by region."
    )


def _overlaps(
    index: dict[str, tuple[list[int], list[int]]], contig: str, start: int, end: int
) -> bool:
    """Whether [start, end) meets a region (regions sorted and merged per contig)."""
    found = index.get(contig)
    if found is None:
        return False
    starts, ends = found
    position = bisect.bisect_left(starts, end) - 1  # the last region starting before `end`
    return position >= 0 and ends[position] > start


def _index(regions: Sequence[Region]) -> dict[str, tuple[list[int], list[int]]]:
    index: dict[str, tuple[list[int], list[int]]] = {}
    for contig, start, end in regions:
        starts, ends = index.setdefault(contig, ([], []))
        starts.append(start)
        ends.append(end)
    return index


def _plaintext(parent: GenomicFile) -> Iterator[bytes]:
    """The parent's plaintext; keys and parts are read here, in the caller's thread (the
    stream is consumed by the pipe's feeding thread, which must not touch the database)."""
    assert parent.archive_key is not None and parent.header is not None
    decrypted = c4gh.decrypt_header(bytes(parent.header), archive_secret_key(parent.archive_key))
    parts = [(p.payload_offset, p.size, p.storage_name) for p in parent.parts.all()]
    return c4gh.decrypt_stream(
        decrypted.data_keys,
        payloads.read_range(parts, 0, parent.payload_size),
        edit_list=decrypted.edit_list,
        expected_size=parent.plaintext_size,
    )


class _SealedWriter:
    """Reads the slice htslib writes into a pipe, encrypts it in 64 KiB segments under
    `data_key` and stores it as payload parts; hashes the plaintext and the payload. The
    parts' rows are written by the caller's thread, in its own transaction."""

    def __init__(self, row: GenomicFile, data_key: bytes, read_fd: int) -> None:
        self.row, self.data_key, self.read_fd = row, data_key, read_fd
        self.plaintext_sha256, self.payload_sha256 = hashlib.sha256(), hashlib.sha256()
        self.plaintext_size = self.payload_size = 0
        self.failure: BaseException | None = None
        self.parts: list[tuple[int, int, str]] = []
        self.thread = threading.Thread(target=self._run, name="region-seal", daemon=True)

    def _flush(self, sealed: bytes) -> None:
        name = payloads.write_part(self.row.payload_key, self.payload_size, sealed)
        self.parts.append((self.payload_size, len(sealed), name))
        self.payload_sha256.update(sealed)
        self.payload_size += len(sealed)

    def _run(self) -> None:
        pending = bytearray()
        try:
            with os.fdopen(self.read_fd, "rb") as pipe:
                while chunk := pipe.read(1024 * 1024):
                    self.plaintext_sha256.update(chunk)
                    self.plaintext_size += len(chunk)
                    pending += chunk
                    whole = len(pending) - len(pending) % c4gh.SEGMENT_SIZE
                    if whole >= PART_TARGET:
                        self._flush(bytes(c4gh.encrypt_segments(self.data_key, pending[:whole])))
                        del pending[:whole]
            if pending:
                self._flush(bytes(c4gh.encrypt_segments(self.data_key, pending)))
        except BaseException as exc:  # reported by the caller after join()
            self.failure = exc


def _write_slice(parent: GenomicFile, regions: Sequence[Region], out_path: str) -> int:
    """htslib reads the parent's plaintext (through a pipe) and writes, to `out_path`,
    the parent's header and every record overlapping a region; returns the record count.
    Overlap is htslib's region rule (`bcftools view -r`, `samtools view REGION`): a VCF
    record by POS..POS+rlen, a read by its aligned span (an unmapped placed read by POS)."""
    mode, _ = SLICEABLE[(parent.format, str(parent.metadata.get("compression")))]
    index = _index(regions)

    def slice_variants(path: str) -> int:
        count = 0
        with (
            pysam.VariantFile(path) as source,
            pysam.VariantFile(out_path, mode, header=source.header) as out,
        ):
            for record in source.fetch():
                stop = max(record.stop, record.start + 1)
                if _overlaps(index, record.contig, record.start, stop):
                    out.write(record)
                    count += 1
        return count

    def slice_alignments(path: str) -> int:
        count = 0
        with (
            pysam.AlignmentFile(path, check_sq=False) as source,
            pysam.AlignmentFile(out_path, mode, template=source) as out,
        ):
            for read in source.fetch(until_eof=True):
                if read.reference_id < 0 or read.reference_name is None:
                    continue
                start = read.reference_start
                end = read.reference_end or start + 1
                if _overlaps(index, read.reference_name, start, end):
                    out.write(read)
                    count += 1
        return count

    reader = slice_alignments if parent.format == "BAM" else slice_variants
    return through_pipe(_plaintext(parent), reader)


def _slice_filename(parent: GenomicFile, digest: str) -> str:
    _, ending = SLICEABLE[(parent.format, str(parent.metadata.get("compression")))]
    name = parent.filename
    stem = name[: -len(ending)] if name.endswith(ending) else PurePosixPath(name).stem
    return f"{stem}.regions-{digest[:8]}{ending}"[:255]


def region_object_create(*, parent: GenomicFile, regions: Sequence[Region]) -> GenomicFile:
    """The region object of `parent` for `regions` (normalised, see genomics.regions),
    made if missing: worker only (it decrypts the parent with the archive key).

    Raises RegionSliceRefused for a file that cannot be sliced (region_refusal), and what
    decryption or htslib raise for a damaged parent (the row is then left `failed`)."""
    refusal = region_refusal(parent)
    if refusal is not None:
        raise RegionSliceRefused(refusal)
    if parent.state != GenomicFile.State.READY or parent.parent_id is not None:
        raise RegionSliceRefused(f"{parent.filename} is not a ready, original file.")
    digest = regions_sha256(regions)
    row = GenomicFile.objects.filter(parent=parent, regions_sha256=digest).first()
    if row is not None and row.state == GenomicFile.State.READY:
        return row
    archive_key = ArchiveKey.objects.get(active=True)
    if row is None:
        try:
            row = GenomicFile.objects.create(
                owner_id=parent.owner_id,
                filename=_slice_filename(parent, digest),
                state=GenomicFile.State.INGESTING,
                source=GenomicFile.Source.REGION,
                upload_length=0,
                archive_key=archive_key,
                payload_key=secrets.token_hex(16),
                format=parent.format,
                parent=parent,
                regions=[list(r) for r in regions],
                regions_sha256=digest,
            )
        except IntegrityError:  # another worker made the row first: it finishes or we redo
            row = GenomicFile.objects.get(parent=parent, regions_sha256=digest)
    # Left by an earlier attempt (a killed worker): start again from an empty payload.
    PayloadPart.objects.filter(file=row).delete()
    payloads.delete_payload(row.payload_key)

    data_key = c4gh.new_data_key()  # fresh: shared with no other object
    read_fd, write_fd = os.pipe()
    sealer = _SealedWriter(row, data_key, read_fd)
    sealer.thread.start()
    try:
        try:
            records = _write_slice(parent, regions, f"/dev/fd/{write_fd}")
        finally:
            os.close(write_fd)  # htslib wrote through its own descriptor: now EOF
            sealer.thread.join()
        if sealer.failure is not None:
            raise sealer.failure
    except Exception as exc:
        GenomicFile.objects.filter(pk=row.pk).update(
            state=GenomicFile.State.FAILED,
            error=f"The region slice could not be made: {exc}"[:1000],
        )
        raise
    archive_secret = archive_secret_key(archive_key)
    header = c4gh.build_header(
        data_key, bytes(archive_key.public_key), writer_secret=archive_secret
    )
    metadata = {**parent.metadata, "records": records, "regions": len(regions)}
    with transaction.atomic():
        PayloadPart.objects.bulk_create(
            PayloadPart(file=row, payload_offset=offset, size=size, storage_name=name)
            for offset, size, name in sealer.parts
        )
        GenomicFile.objects.filter(pk=row.pk).update(
            state=GenomicFile.State.READY,
            header=header,
            archive_key=archive_key,
            progress=1.0,
            upload_length=sealer.plaintext_size,
            upload_offset=sealer.plaintext_size,
            payload_size=sealer.payload_size,
            payload_sha256=sealer.payload_sha256.hexdigest(),
            plaintext_size=sealer.plaintext_size,
            plaintext_sha256=sealer.plaintext_sha256.hexdigest(),
            metadata=metadata,
            error="",
            ready_at=timezone.now(),
        )
    logger.info("region object %s of %s: %s records", row.pk, parent.pk, records)
    # Its own encrypted index, as ingest makes for a file, so htsget serves regions of it.
    try:
        file_index_build(file_id=str(row.pk))
    except (c4gh.Crypt4GHError, htsindex.IndexUnreadable) as exc:
        logger.warning("region object %s not indexed: %s", row.pk, exc)
    row.refresh_from_db()
    return row
