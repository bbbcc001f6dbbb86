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
tier with the same regions reuse it, and a redelivered task finish or redo it, once at
listing time, never per buyer. One worker makes it at a time (_claim): a second tier's
build meeting it half made raises RegionObjectBusy and waits for the first.
Cost O(slice), not O(file): through the parent's encrypted
index (genomics.services.covering, the rule htsget tickets use too), only the Crypt4GH
segments holding the header blocks, the BGZF blocks htslib's index gives for the regions
and the EOF marker are read from storage and decrypted; htslib then reads just those
blocks (seeking to each index chunk, as its own iterator does) and keeps the records
that overlap. A parent without index gets it built first (one pass, kept); one that
cannot have one (a donor's edit list, an unsorted file) is read in one whole pass.
Plaintext stays in memory: memfds holding only the decrypted segments and the part of
the slice not yet encrypted (and, for the whole pass, an OS pipe).
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import hashlib
import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import PurePosixPath

import pysam
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from genomics import c4gh, htsindex, payloads
from genomics.archive_secret import archive_secret_key
from genomics.formats.stream import through_pipe
from genomics.models import ArchiveKey, FileIndex, GenomicFile, PayloadPart
from genomics.regions import (
    Region,
    contig_key,
    regions_for_file,
    regions_past_end,
    regions_sha256,
)
from genomics.services import covering
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
# Records written between two drains of the slice's memfd (a few MiB at most for reads).
DRAIN_EVERY = 256


class RegionSliceRefused(ValueError):
    """The file cannot be sold by region; the message says why and what to do."""


class RegionObjectBusy(RuntimeError):
    """Another worker is making this region object (the same parent and regions, for
    another tier): the caller waits for it and reuses it (marketplace.services.tiers)."""


def _claim(row: GenomicFile) -> bool:
    """Take the making of region object `row` (one not ready): True if no worker holds it,
    i.e. it failed, or its maker claimed it longer ago than any task may run (the worker
    died). The claim is the row's `updated_at`, set here and by its creation (the creator
    holds it); a conditional UPDATE, so of two workers exactly one gets it."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.TASK_TIME_LIMIT_S)
    return bool(
        GenomicFile.objects.filter(pk=row.pk)
        .exclude(state=GenomicFile.State.READY)
        .filter(Q(state=GenomicFile.State.FAILED) | Q(updated_at__lt=stale))
        .update(state=GenomicFile.State.INGESTING, error="", updated_at=now)
    )


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


# A record's contig name -> its contig_key (a handful of names per file, a call per record).
_key = lru_cache(maxsize=4096)(contig_key)


def _overlaps(
    index: dict[str, tuple[list[int], list[int]]], contig: str, start: int, end: int
) -> bool:
    """Whether [start, end) on `contig` (the file's name for it) meets a region (regions
    sorted and merged per contig, keyed by contig_key)."""
    found = index.get(_key(contig))
    if found is None:
        return False
    starts, ends = found
    position = bisect.bisect_left(starts, end) - 1  # the last region starting before `end`
    return position >= 0 and ends[position] > start


def _index(regions: Sequence[Region]) -> dict[str, tuple[list[int], list[int]]]:
    index: dict[str, tuple[list[int], list[int]]] = {}
    for contig, start, end in sorted((_key(c), s, e) for c, s, e in regions):
        starts, ends = index.setdefault(contig, ([], []))
        starts.append(start)
        ends.append(end)
    return index


def _plaintext(parent: GenomicFile) -> Iterator[bytes]:
    """The parent's whole plaintext (the pass for a file without index); keys and parts
    are read here, in the caller's thread (the stream is consumed by the pipe's feeding
    thread, which must not touch the database)."""
    assert parent.archive_key is not None and parent.header is not None
    decrypted = c4gh.decrypt_header(bytes(parent.header), archive_secret_key(parent.archive_key))
    parts = [(p.payload_offset, p.size, p.storage_name) for p in parent.parts.all()]
    return c4gh.decrypt_stream(
        decrypted.data_keys,
        payloads.read_range(parts, 0, parent.payload_size),
        edit_list=decrypted.edit_list,
        # The check counts the segments' bytes, before an edit list; the recorded size is
        # what the edit list keeps, so only a file without one can be checked against it.
        expected_size=parent.plaintext_size if decrypted.edit_list is None else None,
    )


@dataclass(frozen=True)
class _Covering:
    """What the index says to read for the regions: the chunks (BGZF virtual offsets,
    merged, in file order) holding every record that overlaps a region, and the plaintext
    byte ranges of the blocks to decrypt (the header blocks, the chunks' blocks, the EOF)."""

    chunks: list[tuple[int, int]]
    ranges: list[tuple[int, int]]
    size: int


def _covering(parent: GenomicFile, index: FileIndex, regions: Sequence[Region]) -> _Covering:
    """The blocks htslib's index gives for `regions` (genomics.services.covering, as an
    htsget ticket selects them). A region on a contig the file lacks selects nothing, as
    the pass over the whole file would."""
    assert parent.archive_key is not None
    parsed, block_map = covering.parsed_index(index, archive_secret_key(parent.archive_key))
    if not isinstance(parsed, htsindex.BinnedIndex):  # CRAM: not sliceable (SLICEABLE)
        raise RegionSliceRefused(f"{parent.filename} has no BAI, TBI or CSI index.")
    chunks: list[tuple[int, int]] = []
    names = [*block_map.references, *parsed.names]
    for contig, start, end in regions_for_file(regions, names):
        with contextlib.suppress(covering.UnknownReference):
            chunks += covering.region_chunks(parsed, block_map, contig, start, end)
    chunks = htsindex.merge_ranges(chunks)
    data_end = block_map.size - block_map.eof_size
    ranges = htsindex.merge_ranges(
        [
            (0, covering.header_end(block_map)),
            *htsindex.chunks_to_ranges(chunks, block_map.blocks, data_end),
            covering.eof_range(block_map),
        ]
    )
    return _Covering(chunks, ranges, block_map.size)


def _sparse_plaintext(parent: GenomicFile, wanted: _Covering) -> int:
    """An anonymous in-memory file (memfd) as long as the parent's plaintext, holding the
    decrypted segments of `wanted.ranges` at their own offsets and holes elsewhere (a hole
    costs no memory); only those segments are read from storage and decrypted. Returns its
    descriptor, the caller's to close."""
    assert parent.archive_key is not None and parent.header is not None
    decrypted = c4gh.decrypt_header(bytes(parent.header), archive_secret_key(parent.archive_key))
    fd = os.memfd_create("region-source")
    try:
        os.ftruncate(fd, wanted.size)
        for offset, plaintext in covering.read_segments(parent, decrypted.data_keys, wanted.ranges):
            os.pwrite(fd, plaintext, offset)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _punch_hole(fd: int, offset: int, length: int) -> None:
    """Free [offset, offset + length) of a memfd (fallocate(2) FALLOC_FL_PUNCH_HOLE |
    FALLOC_FL_KEEP_SIZE; Python's os module has no punch-hole call)."""
    if length > 0 and _libc.fallocate(fd, 3, offset, length) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


class _Sealer:
    """Encrypts the slice htslib writes, in 64 KiB segments under `data_key`, and stores it
    as payload parts; hashes the plaintext and the payload. The parts' rows are written by
    the caller, in its own transaction.

    htslib writes to an anonymous in-memory file (`path`), never to a pipe: pysam closes
    its files holding Python's GIL, so a final flush blocked on a full pipe would wait
    forever for a reader thread that needs the GIL to drain it. The caller's thread calls
    `drain()` as htslib writes (and `finish()` after closing): what it has encrypted is
    punched out of the memfd, so memory holds only what awaits encryption."""

    def __init__(self, row: GenomicFile, data_key: bytes) -> None:
        self.row, self.data_key = row, data_key
        self.fd = os.memfd_create("region-slice")
        self.path = f"/proc/self/fd/{self.fd}"
        self.plaintext_sha256, self.payload_sha256 = hashlib.sha256(), hashlib.sha256()
        self.plaintext_size = self.payload_size = 0
        self.parts: list[tuple[int, int, str]] = []
        self.pending = bytearray()

    def _flush(self, plaintext: bytes | bytearray) -> None:
        sealed = bytes(c4gh.encrypt_segments(self.data_key, plaintext))
        name = payloads.write_part(self.row.payload_key, self.payload_size, sealed)
        self.parts.append((self.payload_size, len(sealed), name))
        self.payload_sha256.update(sealed)
        self.payload_size += len(sealed)

    def drain(self) -> None:
        """Take what htslib has written so far; store whole segments once PART_TARGET
        bytes are pending."""
        written = os.fstat(self.fd).st_size
        while self.plaintext_size < written:
            size = min(written - self.plaintext_size, 1 << 20)
            chunk = os.pread(self.fd, size, self.plaintext_size)
            if not chunk:
                break
            _punch_hole(self.fd, self.plaintext_size, len(chunk))
            self.plaintext_sha256.update(chunk)
            self.plaintext_size += len(chunk)
            self.pending += chunk
        whole = len(self.pending) - len(self.pending) % c4gh.SEGMENT_SIZE
        if whole >= PART_TARGET:
            self._flush(self.pending[:whole])
            del self.pending[:whole]

    def finish(self) -> None:
        """Take the rest, once htslib has closed the slice."""
        self.drain()
        if self.pending:
            self._flush(self.pending)
            self.pending.clear()

    def close(self) -> None:
        os.close(self.fd)


def _chunk_records(
    source: pysam.VariantFile | pysam.AlignmentFile, chunks: list[tuple[int, int]]
) -> Iterator[object]:
    """The records of `source` in `chunks` (virtual offsets), in file order, each once:
    htslib's iterator walk (seek to a chunk's start, read while before its end), so only
    the chunks' blocks are read."""
    for start, end in chunks:
        source.seek(start)
        while source.tell() < end:
            yield next(source)


def _check_lengths(parent: GenomicFile, regions: Sequence[Region], lengths: dict[str, int]) -> None:
    """Refuse regions ending past their contig's length in the file's header (VCF
    `##contig=<length=>`, BAM `@SQ LN`): a BED of another build or a typo, which would
    otherwise sell less than it says. Raises RegionSliceRefused."""
    past = regions_past_end(regions, lengths)
    if past:
        raise RegionSliceRefused(
            f"{len(past)} region(s) end past their contig's length in {parent.filename}'s "
            f"header: {', '.join(past[:5])}. Are they of another reference build?"
        )


def _write_slice(
    parent: GenomicFile, regions: Sequence[Region], sealer: _Sealer, index: FileIndex | None
) -> int:
    """htslib writes, to `sealer.path`, the parent's header and every record overlapping a
    region (the sealer drains it as it goes); returns the record count. Overlap is
    htslib's region rule (`bcftools view -R`, `samtools view -L`): a VCF record by
    POS..POS+rlen, a read by its aligned span (an unmapped placed read by POS).

    With the parent's `index`, htslib reads only the blocks the index gives for the
    regions (decrypted from the segments holding them, see _sparse_plaintext); without it,
    the whole plaintext through a pipe (one sequential pass)."""
    mode, _ = SLICEABLE[(parent.format, str(parent.metadata.get("compression")))]
    wanted = _index(regions)
    covered = _covering(parent, index, regions) if index is not None else None

    def records(source: pysam.VariantFile | pysam.AlignmentFile) -> Iterator[object]:
        if covered is not None:
            return _chunk_records(source, covered.chunks)
        if isinstance(source, pysam.AlignmentFile):
            return source.fetch(until_eof=True)
        return source.fetch()

    def slice_variants(path: str) -> int:
        count = 0
        with (
            pysam.VariantFile(path) as source,
            pysam.VariantFile(sealer.path, mode, header=source.header) as out,
        ):
            lengths = {str(n): c.length for n, c in source.header.contigs.items() if c.length}
            _check_lengths(parent, regions, lengths)
            for record in records(source):
                assert isinstance(record, pysam.VariantRecord)
                stop = max(record.stop, record.start + 1)
                if _overlaps(wanted, record.contig, record.start, stop):
                    out.write(record)
                    count += 1
                    if count % DRAIN_EVERY == 0:
                        sealer.drain()
        return count

    def slice_alignments(path: str) -> int:
        count = 0
        with (
            pysam.AlignmentFile(path, check_sq=False) as source,
            pysam.AlignmentFile(sealer.path, mode, template=source) as out,
        ):
            _check_lengths(
                parent, regions, dict(zip(source.references, source.lengths, strict=True))
            )
            for read in records(source):
                assert isinstance(read, pysam.AlignedSegment)
                if read.reference_id < 0 or read.reference_name is None:
                    continue
                start = read.reference_start
                end = read.reference_end or start + 1
                if _overlaps(wanted, read.reference_name, start, end):
                    out.write(read)
                    count += 1
                    if count % DRAIN_EVERY == 0:
                        sealer.drain()
        return count

    reader = slice_alignments if parent.format == "BAM" else slice_variants
    if covered is None:
        return through_pipe(_plaintext(parent), reader)
    fd = _sparse_plaintext(parent, covered)
    try:
        return reader(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _parent_index(parent: GenomicFile) -> FileIndex | None:
    """The parent's index; a file ingested before indexes existed gets it built first
    (one pass over the file, kept for htsget and every later tier). None when it cannot
    have one (a donor's edit list, or htslib cannot index it, e.g. an unsorted VCF): the
    slice is then made by one pass over the whole file."""
    index = FileIndex.objects.filter(file=parent).first()
    if index is not None:
        return index
    try:
        return file_index_build(file_id=str(parent.pk))
    except (c4gh.Crypt4GHError, htsindex.IndexUnreadable) as exc:
        logger.warning("file %s could not be indexed, sliced by a whole pass: %s", parent.pk, exc)
        return None


def _slice_filename(parent: GenomicFile, digest: str) -> str:
    _, ending = SLICEABLE[(parent.format, str(parent.metadata.get("compression")))]
    name = parent.filename
    stem = name[: -len(ending)] if name.endswith(ending) else PurePosixPath(name).stem
    return f"{stem}.regions-{digest[:8]}{ending}"[:255]


def region_object_create(*, parent: GenomicFile, regions: Sequence[Region]) -> GenomicFile:
    """The region object of `parent` for `regions` (normalised, see genomics.regions),
    made if missing: worker only (it decrypts the parent with the archive key).

    `regions` may name contigs as another file of the dataset does (`chr17` for a file of
    `17`): they are matched to this file's own names (genomics.regions.contig_key), the
    row keeping the tier's `regions` and digest.

    Raises RegionSliceRefused for a file that cannot be sliced (region_refusal) or a region
    ending past its contig's length in the file's header, RegionObjectBusy while another
    worker makes the same object, and what decryption or htslib raise for a damaged parent
    (the row is then left `failed`)."""
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
            with transaction.atomic():
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
        except IntegrityError:  # another worker made the row first: it is building it
            row = GenomicFile.objects.get(parent=parent, regions_sha256=digest)
            if row.state == GenomicFile.State.READY:
                return row
            if not _claim(row):
                raise RegionObjectBusy(row.pk) from None
    elif not _claim(row):
        raise RegionObjectBusy(row.pk)
    # Left by an earlier attempt (a killed worker): start again from an empty payload.
    # Only the claimant gets here, so no other worker writes this row's parts meanwhile.
    PayloadPart.objects.filter(file=row).delete()
    payloads.delete_payload(row.payload_key)

    data_key = c4gh.new_data_key()  # fresh: shared with no other object
    sealer = _Sealer(row, data_key)
    try:
        index = _parent_index(parent)
        records = _write_slice(parent, regions, sealer, index)
        sealer.finish()
    except Exception as exc:
        GenomicFile.objects.filter(pk=row.pk).update(
            state=GenomicFile.State.FAILED,
            error=f"The region slice could not be made: {exc}"[:1000],
        )
        raise
    finally:
        sealer.close()
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
