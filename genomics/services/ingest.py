"""Ingest (worker): one streaming pass over the stored payload that decrypts it, hashes
the payload and the plaintext, and hands the plaintext to the format inspector; then the
file is `ready` with its metadata, or `failed` with a sentence saying what is wrong.

Plaintext only ever exists in this process's memory, a segment at a time. Idempotent: a
redelivered task finds the file no longer `ingesting` and does nothing; a task killed
halfway leaves it `ingesting`, and the redelivered one starts again from the top.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.worker_secrets import SecretMissing
from genomics import c4gh, formats, htsindex, ingest_taps, payloads
from genomics.archive_secret import archive_secret_key
from genomics.models import ArchiveKey, GenomicFile, PayloadPart
from genomics.services.indexes import file_index_build
from genomics.services.uploads import upload_fail

logger = logging.getLogger(__name__)

State = GenomicFile.State
PROGRESS_EVERY_S = 0.5


def _parts(upload: GenomicFile) -> list[tuple[int, int, str]]:
    return list(
        PayloadPart.objects.filter(file=upload).values_list(
            "payload_offset", "size", "storage_name"
        )
    )


def _header_of_another_archive_key(
    upload: GenomicFile, secret: bytes
) -> c4gh.DecryptedHeader | None:
    """A donor may have encrypted to the archive key that was active when they fetched it,
    which a rotation has since replaced: while that key is not retired, its header is
    opened and moved to the file's own key (as the rotation would), else None."""
    assert upload.archive_key is not None and upload.header is not None
    others = ArchiveKey.objects.filter(retired_at__isnull=True).exclude(pk=upload.archive_key.pk)
    for other in others:
        try:
            other_secret = archive_secret_key(other)
            decrypted = c4gh.decrypt_header(bytes(upload.header), other_secret)
        except (SecretMissing, c4gh.HeaderError):
            continue
        moved = c4gh.reencrypt_header(
            bytes(upload.header),
            other_secret,
            bytes(upload.archive_key.public_key),
            writer_secret=secret,
        )
        GenomicFile.objects.filter(pk=upload.pk).update(header=moved)
        return decrypted
    return None


def _index(upload: GenomicFile, file_format: str, compression: str) -> None:
    """The file's standard index, before it is ready (so a ready file is sliceable at
    once). A second decrypting pass: htslib indexes a file it can seek in, the stream
    above is gone. A file that cannot be indexed is still ready, served whole."""
    try:
        file_index_build(file_id=str(upload.pk), file_format=file_format, compression=compression)
    except (c4gh.Crypt4GHError, htsindex.IndexUnreadable) as exc:
        logger.warning("file %s not indexed: %s", upload.pk, exc)


def file_ingest(*, file_id: str) -> GenomicFile | None:
    upload = GenomicFile.objects.select_related("archive_key").filter(pk=file_id).first()
    if upload is None or upload.state != State.INGESTING:
        return upload
    assert upload.archive_key is not None and upload.header is not None
    secret = archive_secret_key(upload.archive_key)
    try:
        decrypted = c4gh.decrypt_header(bytes(upload.header), secret)
    except c4gh.HeaderError as exc:
        decrypted_by_other = _header_of_another_archive_key(upload, secret)
        if decrypted_by_other is not None:
            decrypted = decrypted_by_other
        else:
            upload_fail(
                upload=upload,
                reason=f"{exc} Encrypt the file to the archive's public "
                "key (/api/v1/archive-key) and upload it again.",
            )
            return upload

    payload_hash, plaintext_hash = hashlib.sha256(), hashlib.sha256()
    plaintext_size = 0
    read = 0
    last_report = time.monotonic()

    def payload_chunks() -> Iterator[bytes]:
        nonlocal read, last_report
        for chunk in payloads.read_range(_parts(upload), 0, upload.payload_size):
            payload_hash.update(chunk)
            read += len(chunk)
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                # updated_at doubles as the ingest's heartbeat (the reconciler reads it).
                GenomicFile.objects.filter(pk=upload.pk).update(
                    progress=round(min(read / max(upload.payload_size, 1), 0.99), 3),
                    updated_at=timezone.now(),
                )
            yield chunk

    def plaintext() -> Iterator[bytes]:
        nonlocal plaintext_size
        expected = upload.upload_length if upload.source == GenomicFile.Source.PLAINTEXT else None
        for block in c4gh.decrypt_stream(
            decrypted.data_keys,
            payload_chunks(),
            edit_list=decrypted.edit_list,
            expected_size=expected,
        ):
            plaintext_hash.update(block)
            plaintext_size += len(block)
            yield block

    # Other apps' readers of the plaintext (the variant index) see it in this one pass.
    taps = ingest_taps.open_taps(upload)
    try:
        return _finish(
            upload,
            ingest_taps.tee(plaintext(), taps),
            taps,
            payload_hash,
            plaintext_hash,
            lambda: plaintext_size,
        )
    finally:
        for tap in taps:
            tap.abort()  # a no-op after commit


def _finish(
    upload: GenomicFile,
    stream: Iterator[bytes],
    taps: list[ingest_taps.IngestTap],
    payload_hash: hashlib._Hash,
    plaintext_hash: hashlib._Hash,
    plaintext_size_now: Callable[[], int],
) -> GenomicFile:
    try:
        inspection = formats.inspect(
            stream, filename=upload.filename, max_unzipped_bytes=settings.UPLOAD_MAX_BYTES
        )
        for _ in stream:  # hash whatever the inspector did not need to read
            pass
    except (c4gh.Crypt4GHError, formats.FormatError) as exc:
        upload_fail(upload=upload, reason=str(exc))
        return upload
    plaintext_size = plaintext_size_now()
    if plaintext_size == 0:
        upload_fail(upload=upload, reason="The file is empty.")
        return upload
    _index(upload, inspection.format, inspection.compression)
    with transaction.atomic():
        updated = GenomicFile.objects.filter(pk=upload.pk, state=State.INGESTING).update(
            state=State.READY,
            progress=1.0,
            format=inspection.format,
            metadata=inspection.metadata,
            plaintext_size=plaintext_size,
            # A ZIP holding one file publishes that file's checksum (the data, whatever the
            # archive's compression and timestamps); researchers check it with unzip -p.
            plaintext_sha256=inspection.content_sha256 or plaintext_hash.hexdigest(),
            payload_sha256=payload_hash.hexdigest(),
            error="",
            ready_at=timezone.now(),
        )
        if updated:
            for tap in taps:
                tap.commit(file_format=inspection.format, metadata=inspection.metadata)
    if updated:
        logger.info("file %s ready: %s, %s bytes", upload.pk, inspection.format, plaintext_size)
    upload.refresh_from_db()
    return upload
