"""The archive keypair: creating it (`manage.py create_archive_key`) and rotating it.

Rotation (`create_archive_key --replace`), as the Federated EGA archive's `rotatekey`:

1. A new keypair is made; each key's secret half is written to its own file
   (`archive_secret_key_path`) before the database changes, the new key becomes active
   (new uploads are encrypted to it) and the old one *retiring*; then the main key file
   is replaced by the new key.
2. The worker (`archive_key_rotate_batch`, queued at once and every ROTATION_INTERVAL_S
   by beat, so a crash only delays it) moves the files of the retiring key in batches: each
   file's header is re-encrypted to the new key (new key as writer), and every grant
   header of the file is remade with the new key as writer, in one transaction per file;
   done files are never redone, so the work resumes where it stopped.
3. Uploads still receiving bytes keep the old key until they complete (their header is
   being written); the retiring key stays usable until its last file has moved, then it
   is *retired*: its secret file is deleted, its public key stays listed with its period
   at `GET /api/v1/archive-key` for `crypt4gh decrypt --sender_pk`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from core.errors import Conflict
from core.queue import enqueue
from core.worker_secrets import SecretMissing
from genomics import c4gh
from genomics.archive_secret import archive_secret_key, archive_secret_key_path
from genomics.models import ArchiveKey, FileIndex, GenomicFile, Grant
from genomics.selectors.archive_keys import RotationProgress, archive_key_rotation_progress

logger = logging.getLogger(__name__)
ROTATION_BATCH = 50


def _write_private(path: Path, content: bytes) -> None:
    """Write `content` to `path` (mode 0600) whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, content)
        os.fsync(handle)
    finally:
        os.close(handle)
    Path(temporary).replace(path)


def archive_key_create(
    *,
    secret_key_path: Path,
    passphrase: str,
    replace: bool = False,
    imported_key_file: bytes | None = None,
) -> ArchiveKey:
    """Make the archive keypair: the secret half to a passphrase-protected file, the
    public half to the database for the web process and the donors.

    With `imported_key_file` (the content of a secret key file any Crypt4GH tool wrote,
    README "Key formats", readable with `passphrase` or unprotected), that key is used
    instead of a new one, and rewritten as `c4gh-v1` protected by `passphrase`.
    With `replace`, an active key is rotated (module docstring); only one rotation at a
    time. Raises Conflict, or c4gh.InvalidKey when the imported file cannot be read.
    """
    if imported_key_file is not None:
        secret = c4gh.read_secret_key_file(imported_key_file, passphrase)
        public = c4gh.public_key_of(secret)
    else:
        secret, public = c4gh.generate_keypair()
    text = c4gh.secret_key_file_text(secret, passphrase, comment="genemarket archive key")
    with transaction.atomic():
        current = ArchiveKey.objects.select_for_update().filter(active=True).first()
        if current is not None and not replace:
            raise Conflict("An archive key exists already; pass --replace to rotate it.")
        if current is None:
            _write_private(secret_key_path, text.encode())
            return ArchiveKey.objects.create(public_key=public)
        if ArchiveKey.objects.filter(active=False, retired_at__isnull=True).exists():
            raise Conflict(
                "A rotation is still moving files to the current key; wait until it is done "
                "(manage.py archive_key_status)."
            )
        if bytes(current.public_key) == public:
            raise Conflict("This key is the active archive key already.")
        # Both secret halves in their own files before the database names the new key.
        old_path = archive_secret_key_path(bytes(current.public_key))
        if not old_path.exists() and secret_key_path.exists():
            _write_private(old_path, secret_key_path.read_bytes())
        _write_private(archive_secret_key_path(public), text.encode())
        current.active = False
        current.replaced_at = timezone.now()
        current.rotation_files = GenomicFile.objects.filter(archive_key=current).count()
        current.save(update_fields=["active", "replaced_at", "rotation_files"])
        new = ArchiveKey.objects.create(public_key=public)
        transaction.on_commit(lambda: _write_private(secret_key_path, text.encode()))
        transaction.on_commit(_enqueue_rotation)
    return new


def _move_file(file_id: UUID, retiring: ArchiveKey, active: ArchiveKey) -> bool:
    """Re-encrypt one file's header and its grants' headers to the active key, in one
    transaction under the file's row lock (grant_create takes the same lock)."""
    old_secret = archive_secret_key(retiring)
    new_secret = archive_secret_key(active)
    new_public = bytes(active.public_key)
    with transaction.atomic():
        row = GenomicFile.objects.select_for_update().filter(pk=file_id).first()
        if row is None or row.archive_key_id != retiring.pk:
            return False  # moved meanwhile, or deleted
        if row.state == GenomicFile.State.RECEIVING:
            return False  # its header is still being written: moved once complete
        if row.header is not None:
            header = c4gh.reencrypt_header(
                bytes(row.header), old_secret, new_public, writer_secret=new_secret
            )
            grants = list(Grant.objects.select_for_update().filter(file=row))
            for grant in grants:
                grant.header = c4gh.reencrypt_header(
                    header, new_secret, bytes(grant.recipient_public_key)
                )
            Grant.objects.bulk_update(grants, ["header"])
            # The file's encrypted index and block map move with it (genomics.models.FileIndex).
            for index in FileIndex.objects.select_for_update().filter(file=row):
                index.index_header = c4gh.reencrypt_header(
                    bytes(index.index_header), old_secret, new_public, writer_secret=new_secret
                )
                index.map_header = c4gh.reencrypt_header(
                    bytes(index.map_header), old_secret, new_public, writer_secret=new_secret
                )
                index.save(update_fields=["index_header", "map_header"])
            row.header = header
        row.archive_key = active
        row.save(update_fields=["header", "archive_key", "updated_at"])
    return True


def archive_key_rotate_batch(*, batch_size: int = ROTATION_BATCH) -> RotationProgress:
    """Move up to `batch_size` files of the retiring key to the active one (worker only);
    retire the key once none is left. Safe to run concurrently and after a crash.

    Returns the progress after the batch.
    """
    progress = archive_key_rotation_progress()
    retiring = progress.retiring_key
    active = ArchiveKey.objects.filter(active=True).first()
    if retiring is None or active is None:
        return progress
    ids = list(
        GenomicFile.objects.filter(archive_key=retiring)
        .exclude(state=GenomicFile.State.RECEIVING)
        .order_by("pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    for file_id in ids:
        _move_file(file_id, retiring, active)
    progress = archive_key_rotation_progress()
    if progress.remaining == 0 and progress.retiring_key is not None:
        _retire(progress.retiring_key)
        logger.info("archive key rotation done: %s files moved", retiring.rotation_files)
        return archive_key_rotation_progress()
    return progress


def _retire(key: ArchiveKey) -> None:
    with transaction.atomic():
        row = ArchiveKey.objects.select_for_update().get(pk=key.pk)
        if row.retired_at is not None or GenomicFile.objects.filter(archive_key=row).exists():
            return
        row.retired_at = timezone.now()
        row.save(update_fields=["retired_at"])
    path = archive_secret_key_path(bytes(key.public_key))
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # a read-only key folder: the operator removes it
        logger.warning("retired archive key: remove its secret key file %s (%s)", path, exc)


def archive_key_rotation_pending() -> bool:
    return ArchiveKey.objects.filter(active=False, retired_at__isnull=True).exists()


def archive_key_rotate(*, budget_batches: int = 20) -> RotationProgress:
    """A few batches (one task's share), then the task is queued again if work remains
    that can be done now; files still receiving wait for beat's next run."""
    progress = archive_key_rotation_progress()
    for _ in range(budget_batches):
        try:
            progress = archive_key_rotate_batch()
        except SecretMissing as exc:  # e.g. a key replaced before rotations existed
            logger.error(
                "archive key rotation stopped: %s; put the retiring key's secret file at %s "
                "(same passphrase) and it goes on by itself",
                exc,
                archive_secret_key_path(bytes(progress.retiring_key.public_key))
                if progress.retiring_key
                else "?",
            )
            return progress
        if progress.done or progress.remaining == progress.receiving:
            return progress
    _enqueue_rotation()
    return progress


def _enqueue_rotation() -> None:
    from genomics.tasks import rotate_archive_key

    enqueue(rotate_archive_key)
