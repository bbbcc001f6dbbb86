"""tus 1.0.0 uploads into the vault, encrypting as bytes arrive.

Written here rather than taken from drf-tus and the like because those write received
chunks to disk before anything else sees them, and plaintext must never rest on disk:
each PATCH body is read in chunks, cut into 64 KiB segments, encrypted with the file's data
key and stored as payload parts. Only an unfinished segment waits between requests, in the
database, encrypted (`genomics.keywrap`). A file that already is Crypt4GH (the donor
encrypted it to the archive key) is stored as it comes: its header goes to the database,
the rest to payload parts.

Concurrency: a part is written and recorded while the file's row is locked and only if
the offset is still the one the PATCH started from, so two PATCHes at the same offset
cannot interleave parts; the loser gets 409 and resumes from HEAD's offset, as tus says.

Ends: an upload that can take no more bytes for good (refused while arriving, failed at
ingest, expired after `UPLOAD_EXPIRES_AFTER_S` without progress) answers 410 Gone to HEAD
and PATCH (`UploadGone`); a terminated one is deleted and answers 404. tus 1.0.0 core
("HEAD": 404, 410 or 403 without `Upload-Offset` when the resource is gone) and the
expiration extension make these the answers on which standard clients (tus-js-client,
tuspy) drop their stored URL and create a new upload; 200 or 409 would have them resume,
or retry, an upload that can never finish.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from uuid import UUID

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core.errors import Conflict, DomainError, NotFound, ServiceUnavailable, ValidationError
from core.queue import enqueue
from genomics import c4gh, erasure, payloads
from genomics.filenames import clean_filename
from genomics.keywrap import seal, unseal
from genomics.models import ArchiveKey, GenomicFile, PayloadPart, UploadState

logger = logging.getLogger(__name__)

State = GenomicFile.State
Source = GenomicFile.Source
READ_CHUNK = 1024 * 1024
# Ciphertext gathered before a part is written: fewer, larger objects in storage.
PART_TARGET = 8 * 1024 * 1024


class UploadTooLarge(ValidationError):
    status = 413
    code = "upload_too_large"


class QuotaExceeded(ValidationError):
    status = 413
    code = "quota_exceeded"


class OffsetMismatch(Conflict):
    code = "offset_mismatch"


class UploadGone(DomainError):
    """The upload can never be finished: the client must start a new one (tus 1.0.0 core,
    HEAD: "404 Not Found, 410 Gone or 403 Forbidden"; expiration extension: 410 for
    uploads the server keeps track of)."""

    status = 410
    code = "upload_gone"


def archive_key_active() -> ArchiveKey:
    key = ArchiveKey.objects.filter(active=True).first()
    if key is None:
        raise ServiceUnavailable(
            "The archive key is not set up yet: run `manage.py create_archive_key`."
        )
    return key


def upload_create(*, owner: AbstractBaseUser, upload_length: int, filename: str) -> GenomicFile:
    """Open an upload (tus creation). Size and quota are checked before any byte arrives."""
    if upload_length <= 0:
        raise ValidationError("The file is empty.", fields={"Upload-Length": ["Must be > 0."]})
    if upload_length > settings.UPLOAD_MAX_BYTES:
        raise UploadTooLarge(
            f"The file is larger than the limit of {settings.UPLOAD_MAX_BYTES} bytes."
        )
    name = clean_filename(filename)
    archive = archive_key_active()
    with transaction.atomic():
        used = (
            GenomicFile.objects.select_for_update()
            # Region objects are slices the market made for tiers, not the donor's uploads.
            .filter(owner_id=owner.pk, parent__isnull=True)
            .exclude(state=State.FAILED)
            .aggregate(total=Sum("upload_length"))["total"]
            or 0
        )
        if used + upload_length > settings.UPLOAD_QUOTA_BYTES:
            raise QuotaExceeded(
                f"This upload would use {used + upload_length} bytes of your "
                f"{settings.UPLOAD_QUOTA_BYTES}-byte quota."
            )
        upload = GenomicFile.objects.create(
            owner_id=owner.pk,
            filename=name,
            upload_length=upload_length,
            payload_key=secrets.token_hex(16),
            archive_key=archive,
        )
        UploadState.objects.create(
            file=upload, wrapped_data_key=seal(os.urandom(32), key=None, context=upload.id.bytes)
        )
    return upload


def upload_get(*, owner: AbstractBaseUser, file_id: UUID | str) -> GenomicFile:
    upload = GenomicFile.objects.filter(pk=file_id, owner_id=owner.pk).first()
    if upload is None:
        raise NotFound("No such upload.")
    return upload


def upload_expires_at(upload: GenomicFile) -> datetime | None:
    """When a receiving upload expires (its last progress + `UPLOAD_EXPIRES_AFTER_S`), the
    tus `Upload-Expires` value; None once every byte has arrived, or once it has ended."""
    if upload.state != State.RECEIVING:
        return None
    return upload.updated_at + timedelta(seconds=settings.UPLOAD_EXPIRES_AFTER_S)


def upload_get_resumable(*, owner: AbstractBaseUser, file_id: UUID | str) -> GenomicFile:
    """The upload a tus HEAD or PATCH names, if it can still be resumed or is complete.

    Raises NotFound (404: never existed for this owner, or terminated) or UploadGone (410:
    failed, refused or expired; the message says why and that a new upload must start).
    """
    upload = upload_get(owner=owner, file_id=file_id)
    if upload.state == State.FAILED:
        raise UploadGone(_gone_message(upload.error or "It failed."))
    expires_at = upload_expires_at(upload)
    if expires_at is not None and expires_at <= timezone.now():
        raise UploadGone(_gone_message(_expired_reason()))
    return upload


def _expired_reason() -> str:
    hours = settings.UPLOAD_EXPIRES_AFTER_S / 3600
    return f"The upload expired: no bytes arrived for {hours:g} hours."


def _gone_message(reason: str) -> str:
    return f"This upload cannot be resumed. {reason.strip().rstrip('.')}. Start a new upload."


@dataclass
class _Appender:
    """The PATCH in progress: plaintext or Crypt4GH bytes in, payload parts out."""

    upload: GenomicFile
    data_key: bytes
    pending: bytes
    offset: int
    source: str
    header: bytes | None
    payload_size: int
    out: list[bytes | memoryview] = field(default_factory=list)
    out_size: int = 0

    def feed(self, chunk: bytes) -> None:
        self.offset += len(chunk)
        data = self.pending + chunk
        if not self.source:
            if len(data) < len(c4gh.MAGIC) and self.offset < self.upload.upload_length:
                self.pending = data
                return
            self.source = Source.CRYPT4GH if data.startswith(c4gh.MAGIC) else Source.PLAINTEXT
            if self.source == Source.PLAINTEXT:
                archive = bytes(self.upload.archive_key.public_key)  # type: ignore[union-attr]
                self.header = c4gh.build_header(self.data_key, archive)
        if self.source == Source.CRYPT4GH and self.header is None:
            try:
                size = c4gh.header_size(data)
            except c4gh.HeaderError as exc:
                raise ValidationError(str(exc)) from exc
            if size is None or len(data) < size:
                self.pending = data
                return
            self.header, data = data[:size], data[size:]
            self._emit(data)
            self.pending = b""
            return
        if self.source == Source.CRYPT4GH:
            self._emit(data)
            self.pending = b""
            return
        whole = len(data) - len(data) % c4gh.SEGMENT_SIZE
        if whole:
            self._emit(c4gh.encrypt_segments(self.data_key, memoryview(data)[:whole]))
        self.pending = data[whole:]

    def finish(self) -> None:
        """The last byte arrived: seal the final short segment, check the header."""
        if self.source == Source.PLAINTEXT and self.pending:
            self._emit(c4gh.encrypt_segments(self.data_key, self.pending))
            self.pending = b""
        if self.source == Source.CRYPT4GH and self.header is None:
            raise ValidationError("The Crypt4GH header is truncated.")

    def _emit(self, data: bytes | memoryview) -> None:
        if data:
            self.out.append(data)
            self.out_size += len(data)

    def take(self) -> bytes:
        data = b"".join(self.out)
        self.out, self.out_size = [], 0
        return data


def _load(upload: GenomicFile) -> _Appender:
    state = UploadState.objects.get(file=upload)
    context = upload.id.bytes
    data_key = unseal(bytes(state.wrapped_data_key), key=None, context=context)
    pending = bytes(state.pending)
    plain_pending = unseal(pending, key=data_key, context=context) if pending else b""
    return _Appender(
        upload=upload,
        data_key=data_key,
        pending=plain_pending,
        offset=upload.upload_offset,
        source=upload.source,
        header=bytes(upload.header) if upload.header is not None else None,
        payload_size=upload.payload_size,
    )


def _commit(appender: _Appender, last_committed: int) -> int:
    """Write the gathered part and record the new offset, if the offset is still ours."""
    upload = appender.upload
    data = appender.take()
    with transaction.atomic():
        row = GenomicFile.objects.select_for_update().get(pk=upload.pk)
        if row.upload_offset != last_committed or row.state != State.RECEIVING:
            raise OffsetMismatch(
                f"The upload moved on to offset {row.upload_offset} meanwhile; resume there."
            )
        if data:
            name = payloads.write_part(upload.payload_key, appender.payload_size, data)
            PayloadPart.objects.create(
                file=upload, payload_offset=appender.payload_size, size=len(data), storage_name=name
            )
            appender.payload_size += len(data)
        pending = (
            seal(appender.pending, key=appender.data_key, context=upload.id.bytes)
            if appender.pending
            else b""
        )
        UploadState.objects.filter(file=upload).update(pending=pending)
        complete = appender.offset == upload.upload_length
        GenomicFile.objects.filter(pk=upload.pk).update(
            upload_offset=appender.offset,
            payload_size=appender.payload_size,
            source=appender.source,
            header=appender.header,
            state=State.INGESTING if complete else State.RECEIVING,
            # update() skips auto_now; the expiry counts from the last progress.
            updated_at=timezone.now(),
        )
        if complete:
            UploadState.objects.filter(file=upload).delete()
            transaction.on_commit(lambda: _enqueue_ingest(str(upload.pk)))
    return appender.offset


def _enqueue_ingest(file_id: str) -> None:
    from genomics.tasks import ingest_file

    enqueue(ingest_file, file_id)


def upload_append(
    *,
    owner: AbstractBaseUser,
    file_id: UUID | str,
    offset: int,
    read: Callable[[int], bytes],
    content_length: int | None,
) -> GenomicFile:
    """Apply one tus PATCH: `read(n)` returns up to n body bytes, b"" at the end.

    Bytes received before a broken connection are kept (encrypted), so the client resumes
    from the offset HEAD reports rather than from its last completed request.
    """
    upload = upload_get_resumable(owner=owner, file_id=file_id)
    if upload.state != State.RECEIVING:
        # Complete and ingesting or ready: HEAD reports offset == length, so a client that
        # retries on 409 (tus-js-client) learns the upload is done.
        raise Conflict("This upload is complete.")
    if offset != upload.upload_offset:
        raise OffsetMismatch(f"The upload is at offset {upload.upload_offset}, not {offset}.")
    remaining = upload.upload_length - offset
    if content_length is not None and content_length > remaining:
        raise UploadTooLarge(f"Only {remaining} more bytes were announced for this upload.")
    appender = _load(upload)
    committed = offset
    try:
        while appender.offset < upload.upload_length:
            chunk = read(min(READ_CHUNK, upload.upload_length - appender.offset))
            if not chunk:
                break
            appender.feed(chunk)
            if appender.out_size >= PART_TARGET:
                committed = _commit(appender, committed)
        if appender.offset == upload.upload_length:
            appender.finish()
    except OSError:
        logger.info(
            "upload %s: connection lost at offset %s; keeping what arrived",
            upload.pk,
            appender.offset,
        )
        if appender.offset != committed:
            _commit(appender, committed)
        raise
    except ValidationError as exc:
        upload_fail(upload=upload, reason=exc.message)
        raise
    if appender.offset != committed or appender.offset == upload.upload_length:
        _commit(appender, committed)
    upload.refresh_from_db()
    return upload


def upload_fail(*, upload: GenomicFile, reason: str) -> None:
    """Mark the file failed and delete its payload: a failed file keeps no bytes."""
    with transaction.atomic():
        GenomicFile.objects.filter(pk=upload.pk).update(state=State.FAILED, error=reason)
        UploadState.objects.filter(file=upload).delete()
        PayloadPart.objects.filter(file=upload).delete()
        transaction.on_commit(lambda: payloads.delete_payload(upload.payload_key))


def upload_terminate(*, owner: AbstractBaseUser, file_id: UUID | str) -> None:
    """tus termination: forget an upload that is still receiving, and its bytes."""
    upload = upload_get(owner=owner, file_id=file_id)
    if upload.state not in (State.RECEIVING, State.FAILED):
        raise Conflict("Only an unfinished upload can be terminated.")
    with transaction.atomic():
        GenomicFile.objects.filter(pk=upload.pk).delete()
        transaction.on_commit(lambda: payloads.delete_payload(upload.payload_key))


def stored_file_delete(*, owner: AbstractBaseUser, file_id: UUID | str) -> GenomicFile:
    """Delete a ready or failed file of `owner` and its stored payload (every part under its
    storage key goes once the deletion commits). Callers check first that nothing else uses
    it (a listing: marketplace's `donor_file_delete`). Raises NotFound, or Conflict for a
    file still arriving (cancel it: `upload_terminate`), being checked, or with grants."""
    with transaction.atomic():
        upload = (
            GenomicFile.objects.select_for_update()
            .filter(pk=file_id, owner_id=owner.pk)
            .defer("header")
            .first()
        )
        if upload is None:
            raise NotFound("No such file.")
        if upload.state == State.RECEIVING:
            raise Conflict("This file is still arriving: cancel the upload instead.")
        if upload.state == State.INGESTING:
            raise Conflict("This file is being checked: delete it once it is ready or has failed.")
        if upload.grants.exists():
            raise Conflict("Researchers were granted this file: it cannot be deleted.")
        # Every storage object its rows name, found as erasure finds them: the payload,
        # its index and block map, a bgzipped copy's replaced payload (genomics.erasure).
        rows = erasure.derived_rows([upload.pk])
        names = erasure.storage_names(rows)
        kept = erasure.names_kept_by_others(names, rows)
        upload.delete()  # its parts, upload state and derived rows go with it (CASCADE)
        gone = [name for name in names if name not in kept]
        transaction.on_commit(partial(erasure.storage_delete, gone))
    return upload


def uploads_expire(*, now: datetime | None = None) -> int:
    """Fail every receiving upload with no progress for `UPLOAD_EXPIRES_AFTER_S` (tus
    expiration extension) and delete its bytes, so it stops counting against the quota.

    Rows a PATCH holds locked are skipped (they are making progress). Returns how many
    uploads expired.
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.UPLOAD_EXPIRES_AFTER_S)
    reason = _expired_reason()
    with transaction.atomic():
        stale = list(
            GenomicFile.objects.select_for_update(skip_locked=True)
            .filter(state=State.RECEIVING, updated_at__lt=cutoff)
            .values_list("pk", "payload_key")
        )
        ids = [pk for pk, _ in stale]
        GenomicFile.objects.filter(pk__in=ids).update(state=State.FAILED, error=reason)
        UploadState.objects.filter(file_id__in=ids).delete()
        PayloadPart.objects.filter(file_id__in=ids).delete()
        for _, payload_key in stale:
            transaction.on_commit(partial(payloads.delete_payload, payload_key))
    if stale:
        logger.info("expired %d uploads without progress", len(stale))
    return len(stale)
