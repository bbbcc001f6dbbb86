"""Storing a VCF bgzipped (issue 17 §1; README "Storing a VCF bgzipped").

A VCF that is plain text, gzip (not bgzip) or inside a ZIP cannot be sliced: htslib seeks by
BGZF block, and such a file has none. Its donor may ask the vault to store it bgzipped; the
worker (the only process holding the archive key) then:

1. decrypts the stored payload, a segment at a time, and decompresses it when it is gzip
   (or reads the ZIP's member), which gives the VCF text exactly as uploaded;
2. writes that text as BGZF with htslib (`pysam.BGZFile`, bgzip's writer) into an anonymous
   in-memory file (`memfd_create`, as indexing does: htslib indexes only a file it can seek
   in, so the BGZF file is held in the worker's memory, never on a disk);
3. checks that the BGZF file decompresses (zlib, an implementation other than the writer's)
   to text of the same SHA-256: the records are exactly the donor's, byte for byte;
4. encrypts it in 64 KiB segments under a FRESH data key into new payload parts, and builds
   and stores its index and block map as ingest does (genomics.services.indexes);
5. switches the file, in one transaction under its row lock (the lock archive key rotations
   and grants take): header, parts, size, checksums, metadata and name now describe the
   BGZF payload, the index row is written, and every grant's header is made again for the
   same recipient key from the new header (O(1) per grant, as a rotation moves them), so
   grants go on working under the same ids. Receivers of `genomics.signals.file_recompressed`
   (the marketplace: audit entry, listings' records, notifications) run in that
   transaction.

Nothing of the file changes before the switch: a failure at any step deletes the attempt's
objects and records the reason, and the file is served as before. The replaced payload
stays in storage for RECOMPRESS_REPLACED_PAYLOAD_KEEP_S after the switch, so a download
that started before it (header and parts are read together, genomics.downloads) finishes;
`replaced_payloads_purge` (beat) deletes it then.

Both checksums are kept: the file's `plaintext_sha256` is the BGZF bytes' (what a grantee
verifies after decrypting; DRS names it), the row's `uploaded_plaintext_sha256` the upload's.

Idempotent: an attempt records its storage keys on the row before writing anything; a task
delivered again finds the row done (nothing to do) or worked on (a heartbeat younger than
STALE_AFTER_S: left alone); an attempt whose heartbeat stopped (a killed worker) is taken
over, its objects deleted; only the attempt that holds the row, and finds the file still on
the payload it read, switches it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import pysam
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.errors import Conflict
from core.queue import enqueue
from core.worker_secrets import SecretMissing
from genomics import c4gh, htsindex, payloads
from genomics.archive_secret import archive_secret_key
from genomics.formats import FormatError
from genomics.formats.stream import gunzip
from genomics.formats.zipped import only_member
from genomics.models import FileIndex, GenomicFile, Grant, PayloadPart, Recompression
from genomics.services.indexes import (
    SealedIndex,
    index_build,
    index_objects_store,
    index_storage_key,
    sliceable,
)
from genomics.signals import file_recompress_failed, file_recompressed

logger = logging.getLogger(__name__)

State = Recompression.State
# A running attempt reports progress at least this often while it reads and writes; one
# silent for longer is taken to be dead (a killed worker) and may be taken over. htslib's
# index build reports nothing while it runs, so this is well above its time on a big file.
STALE_AFTER_S = 300.0
PROGRESS_EVERY_S = 1.0
READ_CHUNK = 1024 * 1024
# Payload parts of 8 MiB: a whole number of 64 KiB segments (Crypt4GH §3.3), so parts
# sealed one by one are the payload sealed at once.
PART_SIZE = 128 * c4gh.SEGMENT_SIZE
# Progress shares of the steps (0..1): reading and compressing, then sealing, then the index.
COMPRESSED_AT, SEALED_AT, INDEXED_AT = 0.7, 0.85, 0.95


class RecompressionFailed(ValueError):
    """The attempt cannot make a faithful BGZF copy; the message is for the donor."""


class _Superseded(Exception):
    """Another attempt holds the row now (this one was taken for dead): stop quietly."""


def recompress_refusal(file: GenomicFile) -> str | None:
    """Why `file` cannot be stored bgzipped, in words for its donor; None if it can."""
    if file.parent_id is not None:
        return "A region slice is made by the vault, already bgzipped."
    if file.state != GenomicFile.State.READY:
        return f"{file.filename} is not ready: only a ready file can be stored bgzipped."
    if file.format != "VCF":
        return (
            f"{file.filename} is {file.format or 'of an unknown format'}: only a VCF is "
            "stored bgzipped (BAM and BCF are always BGZF already)."
        )
    if sliceable(file):
        return f"{file.filename} is already bgzipped: researchers can read regions of it."
    return None


def file_recompress_request(*, file: GenomicFile) -> Recompression:
    """Ask the worker to store `file` bgzipped; the row says how it goes. Asking while it is
    queued or working returns that row; asking after a failure starts again.

    Raises Conflict (with recompress_refusal's sentence) for a file that cannot be."""
    refusal = recompress_refusal(file)
    if refusal is not None:
        raise Conflict(refusal)
    now = timezone.now()
    with transaction.atomic():
        row, created = Recompression.objects.select_for_update().get_or_create(
            file=file, defaults={"requested_at": now}
        )
        if not created:
            if row.state in (State.QUEUED, State.WORKING):
                return row
            row.state, row.progress, row.error = State.QUEUED, 0.0, ""
            row.requested_at, row.finished_at = now, None
            row.save(
                update_fields=[
                    "state",
                    "progress",
                    "error",
                    "requested_at",
                    "finished_at",
                    "updated_at",
                ]
            )
        transaction.on_commit(lambda: _enqueue(str(file.pk)))
    return row


def _enqueue(file_id: str) -> None:
    from genomics.tasks import recompress_file

    enqueue(recompress_file, file_id)


@dataclass(frozen=True)
class _Attempt:
    file: GenomicFile
    token: str
    payload_key: str  # the payload this attempt reads: the switch requires it still is the file's
    new_payload_key: str
    index_payload_key: str
    map_payload_key: str

    def delete_objects(self) -> None:
        for key in (self.new_payload_key, self.index_payload_key, self.map_payload_key):
            payloads.delete_payload(key)


@dataclass(frozen=True)
class _Staged:
    data_key: bytes
    parts: list[tuple[int, int, str]]
    payload_size: int
    payload_sha256: str
    plaintext_size: int
    plaintext_sha256: str
    index: SealedIndex


def _attempt_keys(row: Recompression) -> list[str]:
    return [
        key
        for key in (row.new_payload_key, row.new_index_payload_key, row.new_map_payload_key)
        if key
    ]


def _claim(file_id: str) -> _Attempt | None:
    """Start an attempt on a queued row, or on a working one whose attempt has gone silent;
    None when there is nothing to do (done, failed, or worked on right now)."""
    now = timezone.now()
    with transaction.atomic():
        row = Recompression.objects.select_for_update().filter(file__pk=file_id).first()
        if row is None or row.state not in (State.QUEUED, State.WORKING):
            return None
        if row.state == State.WORKING and row.updated_at > now - timedelta(seconds=STALE_AFTER_S):
            return None
        leftovers = _attempt_keys(row)  # of an attempt that died: its objects go
        for key in leftovers:
            transaction.on_commit(partial(payloads.delete_payload, key))
        file = GenomicFile.objects.select_related("archive_key").get(pk=file_id)
        refusal = recompress_refusal(file)
        if refusal is not None:  # the file changed since it was asked (e.g. it failed)
            _record_failure(row, file, refusal)
            return None
        attempt = _Attempt(
            file=file,
            token=secrets.token_hex(16),
            payload_key=file.payload_key,
            new_payload_key=secrets.token_hex(16),
            index_payload_key=index_storage_key(),
            map_payload_key=index_storage_key(),
        )
        row.state, row.progress, row.error = State.WORKING, 0.0, ""
        row.attempt = attempt.token
        row.new_payload_key = attempt.new_payload_key
        row.new_index_payload_key = attempt.index_payload_key
        row.new_map_payload_key = attempt.map_payload_key
        row.save()
    return attempt


class _Heartbeat:
    """Progress on the row, at most every PROGRESS_EVERY_S; raises _Superseded when another
    attempt holds the row."""

    def __init__(self, attempt: _Attempt) -> None:
        self.attempt = attempt
        self.last = 0.0

    def __call__(self, progress: float, *, force: bool = False) -> None:
        now = timezone.now().timestamp()
        if not force and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        beat = Recompression.objects.filter(
            file_id=self.attempt.file.pk, attempt=self.attempt.token, state=State.WORKING
        ).update(progress=round(min(progress, 0.99), 3), updated_at=timezone.now())
        if not beat:
            raise _Superseded


def _vcf_text(attempt: _Attempt, beat: _Heartbeat) -> Iterator[bytes]:
    """The uploaded VCF's text: the payload decrypted, its ZIP member read out, gunzipped."""
    file = attempt.file
    assert file.archive_key is not None and file.header is not None
    decrypted = c4gh.decrypt_header(bytes(file.header), archive_secret_key(file.archive_key))
    parts = list(
        PayloadPart.objects.filter(file=file).values_list("payload_offset", "size", "storage_name")
    )
    total = max(file.payload_size, 1)

    def payload() -> Iterator[bytes]:
        read = 0
        for chunk in payloads.read_range(parts, 0, file.payload_size):
            read += len(chunk)
            beat(COMPRESSED_AT * read / total)
            yield chunk

    text: Iterator[bytes] = c4gh.decrypt_stream(
        decrypted.data_keys,
        payload(),
        edit_list=decrypted.edit_list,
        expected_size=file.plaintext_size,
    )
    metadata = file.metadata or {}
    if metadata.get("container") == "zip":
        text = only_member(text, max_bytes=settings.UPLOAD_MAX_BYTES)
    if metadata.get("compression") in ("gzip", "bgzf"):
        text = gunzip(text, kind="VCF")
    return text


def _fd_chunks(fd: int, size: int, chunk: int) -> Iterator[bytes]:
    position = 0
    while position < size:
        data = os.pread(fd, min(chunk, size - position), position)
        if not data:
            raise OSError("the in-memory BGZF file is shorter than written")
        position += len(data)
        yield data


# Text per BGZF block, under BGZF's 65,280-byte limit of uncompressed data per block.
BLOCK_TEXT = 60_000


def _whole_lines(chunk: bytes, pending: bytearray, *, last: bool = False) -> Iterator[bytes]:
    """Pieces of `pending` + `chunk` of about BLOCK_TEXT bytes that each end on a line's
    end (longer only for a longer line); what is left stays in `pending`, and with `last`
    it all goes, the final piece as it ends.

    Each piece becomes its own BGZF block, so no record straddles two blocks (as htslib's
    own VCF writer does it; `bgzip` and a bare BGZFile cut blocks at 64 KiB wherever they
    fall): an htsget slice, made of whole blocks, then starts and ends on whole records,
    and `bcftools view` reads it from its first byte (README "Storing a VCF bgzipped")."""
    pending += chunk
    start = 0
    while len(pending) - start >= BLOCK_TEXT or (last and start < len(pending)):
        end = pending.rfind(b"\n", start, start + BLOCK_TEXT) + 1
        if end <= start:  # no line end within BLOCK_TEXT: one long line (or the tail)
            end = pending.find(b"\n", start + BLOCK_TEXT) + 1
            if end <= 0:
                if not last:
                    break
                end = len(pending)
        yield bytes(pending[start:end])
        start = end
    del pending[:start]


def _stage(attempt: _Attempt, beat: _Heartbeat) -> _Staged:
    """Steps 1-4: the BGZF file made, checked, sealed and indexed; stored under the
    attempt's keys, recorded nowhere yet."""
    fd = os.memfd_create("bgzf")
    path = f"/proc/self/fd/{fd}"
    pending = bytearray()
    try:
        uploaded = hashlib.sha256()
        with pysam.BGZFile(path, "wb", None) as out:
            for chunk in _vcf_text(attempt, beat):
                uploaded.update(chunk)
                for block in _whole_lines(chunk, pending):
                    out.write(block)
                    out.flush()  # ends the BGZF block here, on a line's end
            for block in _whole_lines(b"", pending, last=True):
                out.write(block)
                out.flush()
        size = os.fstat(fd).st_size
        again = hashlib.sha256()
        for chunk in gunzip(_fd_chunks(fd, size, READ_CHUNK), kind="VCF"):
            again.update(chunk)
        if again.digest() != uploaded.digest():
            raise RecompressionFailed(
                "The bgzipped copy does not decompress to the uploaded text; nothing was "
                "changed. Try again, or upload the file bgzipped (`bgzip file.vcf`)."
            )
        beat(COMPRESSED_AT, force=True)
        data_key = c4gh.new_data_key()
        plaintext_hash, payload_hash = hashlib.sha256(), hashlib.sha256()
        parts: list[tuple[int, int, str]] = []
        payload_size = 0
        for chunk in _fd_chunks(fd, size, PART_SIZE):
            plaintext_hash.update(chunk)
            sealed = bytes(c4gh.encrypt_segments(data_key, chunk))
            name = payloads.write_part(attempt.new_payload_key, payload_size, sealed)
            parts.append((payload_size, len(sealed), name))
            payload_hash.update(sealed)
            payload_size += len(sealed)
            beat(COMPRESSED_AT + (SEALED_AT - COMPRESSED_AT) * payload_size / max(size, 1))
        beat(SEALED_AT, force=True)
        try:
            kind, index, block_map = index_build(path, fd, "VCF", size)
        except (pysam.utils.SamtoolsError, OSError, ValueError) as exc:
            raise htsindex.IndexUnreadable(f"htslib could not index the file: {exc}") from exc
    finally:
        os.close(fd)
    sealed_index = index_objects_store(
        kind,
        index,
        block_map,
        index_payload_key=attempt.index_payload_key,
        map_payload_key=attempt.map_payload_key,
    )
    beat(INDEXED_AT, force=True)
    return _Staged(
        data_key,
        parts,
        payload_size,
        payload_hash.hexdigest(),
        size,
        plaintext_hash.hexdigest(),
        sealed_index,
    )


def bgzipped_filename(name: str) -> str:
    """The stored file's name once bgzipped: `x.vcf` -> `x.vcf.gz`; a gzip `x.vcf.gz` keeps
    its name; a ZIP's `x.zip` -> `x.vcf.gz`. So a grantee's download decrypts to a name
    that tabix and bcftools take for what it is."""
    stem = name
    for ending in (".zip", ".gz", ".bgz"):
        if stem.lower().endswith(ending):
            stem = stem[: -len(ending)]
    if not stem.lower().endswith(".vcf"):
        stem += ".vcf"
    return f"{stem[:252]}.gz"


def _uploaded_compression(metadata: dict[str, object]) -> str:
    compression = str(metadata.get("compression") or "none")
    container = metadata.get("container")
    return f"{container}+{compression}" if container else compression


def _switch(attempt: _Attempt, staged: _Staged) -> Recompression | None:
    """Step 5, in one transaction; None when this attempt no longer holds the row (the
    caller then deletes its objects). Raises RecompressionFailed when the file changed."""
    now = timezone.now()
    with transaction.atomic():
        # The file's lock first, as deleting the file (which cascades to this row) takes it.
        file = (
            GenomicFile.objects.select_for_update(of=("self",))
            .select_related("archive_key")
            .filter(pk=attempt.file.pk)
            .first()
        )
        row = Recompression.objects.select_for_update().filter(file_id=attempt.file.pk).first()
        if file is None or row is None or row.attempt != attempt.token:
            return None
        if row.state != State.WORKING:
            return None
        if file.payload_key != attempt.payload_key or file.state != GenomicFile.State.READY:
            raise RecompressionFailed("The file changed while it was being bgzipped.")
        archive = file.archive_key
        assert archive is not None
        secret = archive_secret_key(archive)
        archive_public = bytes(archive.public_key)
        header = c4gh.build_header(staged.data_key, archive_public, writer_secret=secret)
        grants = list(Grant.objects.select_for_update().filter(file=file))
        for grant in grants:
            grant.header = c4gh.reencrypt_header(header, secret, bytes(grant.recipient_public_key))
        Grant.objects.bulk_update(grants, ["header"])
        PayloadPart.objects.filter(file=file).delete()
        PayloadPart.objects.bulk_create(
            PayloadPart(file=file, payload_offset=offset, size=size, storage_name=name)
            for offset, size, name in staged.parts
        )
        # A non-sliceable file has no index; one left by hand would describe the old bytes.
        for stale in FileIndex.objects.filter(file=file):
            names = (stale.index_storage_name, stale.map_storage_name)
            stale.delete()
            for name in names:
                transaction.on_commit(partial(payloads.delete_payload, name.split("/")[1]))
        FileIndex.objects.create(file=file, **staged.index.row_fields(archive_public, secret))
        metadata = {k: v for k, v in (file.metadata or {}).items() if k != "container"}
        metadata["compression"] = "bgzf"
        if row.replaced_payload_key:  # a payload an earlier switch replaced, not purged yet
            transaction.on_commit(partial(payloads.delete_payload, row.replaced_payload_key))
        row.uploaded_filename = file.filename
        row.uploaded_plaintext_sha256 = file.plaintext_sha256
        row.uploaded_plaintext_size = file.plaintext_size
        row.uploaded_compression = _uploaded_compression(file.metadata or {})
        row.bgzipped_plaintext_sha256 = staged.plaintext_sha256
        row.grants_reissued = len(grants)
        row.replaced_payload_key = file.payload_key
        row.replaced_purge_after = now + timedelta(
            seconds=settings.RECOMPRESS_REPLACED_PAYLOAD_KEEP_S
        )
        row.state, row.progress, row.error, row.finished_at = State.DONE, 1.0, "", now
        row.attempt = row.new_payload_key = ""
        row.new_index_payload_key = row.new_map_payload_key = ""
        row.save()
        file.header = header
        file.payload_key = attempt.new_payload_key
        file.payload_size = staged.payload_size
        file.payload_sha256 = staged.payload_sha256
        file.plaintext_size = staged.plaintext_size
        file.plaintext_sha256 = staged.plaintext_sha256
        file.metadata = metadata
        file.filename = bgzipped_filename(file.filename)
        file.save(
            update_fields=[
                "header",
                "payload_key",
                "payload_size",
                "payload_sha256",
                "plaintext_size",
                "plaintext_sha256",
                "metadata",
                "filename",
                "updated_at",
            ]
        )
        file_recompressed.send(sender=Recompression, recompression=row, file=file)
    logger.info(
        "file %s stored bgzipped: %s bytes, %s grants re-issued",
        file.pk,
        staged.plaintext_size,
        len(grants),
    )
    return row


def _record_failure(row: Recompression, file: GenomicFile, reason: str) -> None:
    """Inside the caller's transaction, with `row` locked."""
    row.state, row.error, row.finished_at = State.FAILED, reason[:1000], timezone.now()
    row.attempt = row.new_payload_key = ""
    row.new_index_payload_key = row.new_map_payload_key = ""
    row.save()
    file_recompress_failed.send(sender=Recompression, recompression=row, file=file)


def _give_up(attempt: _Attempt, reason: str) -> None:
    """Record the failure, if this attempt still holds the row."""
    with transaction.atomic():
        row = (
            Recompression.objects.select_for_update()
            .filter(file_id=attempt.file.pk, attempt=attempt.token)
            .first()
        )
        if row is not None:
            _record_failure(row, attempt.file, reason)


# What a failed attempt tells the donor, by the kind of error; anything else is a fault of
# ours, logged with its traceback, and told as such.
_EXPECTED = (
    RecompressionFailed,
    c4gh.Crypt4GHError,
    FormatError,
    htsindex.IndexUnreadable,
    OSError,
)


def file_recompress(*, file_id: str) -> Recompression | None:
    """Store the file bgzipped (worker only); see the module's docstring. Returns the row as
    it ends up (None when there is none). Raises SecretMissing outside the worker (the row
    stays as it was: the reconciler sends the task again)."""
    attempt = _claim(file_id)
    if attempt is not None:
        beat = _Heartbeat(attempt)
        switched: Recompression | None = None
        try:
            staged = _stage(attempt, beat)
            switched = _switch(attempt, staged)
        except _Superseded:
            logger.info("recompression of %s: taken over by another attempt", file_id)
        except SecretMissing:  # not the worker: the row waits for one (the reconciler)
            attempt.delete_objects()
            raise
        except _EXPECTED as exc:
            logger.warning("recompression of %s failed: %s", file_id, exc)
            _give_up(attempt, f"It could not be stored bgzipped: {exc}")
        except Exception:
            logger.exception("recompression of %s failed", file_id)
            _give_up(attempt, "It could not be stored bgzipped (an error of ours); try again.")
        if switched is None:  # failed, or another attempt holds the row: ours go
            attempt.delete_objects()
    return Recompression.objects.filter(file__pk=file_id).first()


def replaced_payloads_purge(*, now: datetime | None = None) -> int:
    """Delete the payloads switches replaced, once RECOMPRESS_REPLACED_PAYLOAD_KEEP_S has
    passed (beat). Returns how many were deleted."""
    due = Recompression.objects.filter(replaced_purge_after__lte=now or timezone.now()).exclude(
        replaced_payload_key=""
    )
    purged = 0
    for file_id, key in due.values_list("file_id", "replaced_payload_key"):
        payloads.delete_payload(key)
        purged += Recompression.objects.filter(pk=file_id, replaced_payload_key=key).update(
            replaced_payload_key="", replaced_purge_after=None
        )
    if purged:
        logger.info("deleted %d payloads replaced by bgzipped copies", purged)
    return purged


def recompressions_waiting(*, cutoff: datetime) -> QuerySet[Recompression]:
    """Queued or working rows without news since `cutoff` (for the reconciler): a task lost
    with the broker, or an attempt killed with its worker."""
    return Recompression.objects.filter(
        state__in=(State.QUEUED, State.WORKING), updated_at__lt=cutoff
    )
