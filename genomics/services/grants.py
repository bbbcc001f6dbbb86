"""Grants (worker): a new header for a recipient's key, O(1) in the file's size."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from core.errors import Conflict
from genomics import c4gh
from genomics.archive_secret import archive_secret_key
from genomics.models import GenomicFile, Grant


def grant_create(*, file: GenomicFile, recipient_public_key: bytes) -> Grant:
    """Re-encrypt the file's header for `recipient_public_key`; idempotent per key.

    Made under the file's row lock, from the header and archive key read under it: an
    archive key rotation moving this file (services/archive_keys.py) takes the same lock,
    so a grant is never made from a header that has just moved, nor missed by the move.
    """
    key = c4gh.parse_public_key(recipient_public_key)
    existing = Grant.objects.filter(file=file, recipient_public_key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            row = (
                GenomicFile.objects.select_for_update(of=("self",))
                .select_related("archive_key")
                .get(pk=file.pk)
            )
            if row.state != GenomicFile.State.READY or row.header is None:
                raise Conflict("Only a ready file can be granted.")
            assert row.archive_key is not None
            header = c4gh.reencrypt_header(
                bytes(row.header), archive_secret_key(row.archive_key), key
            )
            return Grant.objects.create(file=row, recipient_public_key=key, header=header)
    except IntegrityError:  # a concurrent grant for the same key committed first
        return Grant.objects.get(file=file, recipient_public_key=key)


def grant_delete(*, grant: Grant) -> None:
    """Revoke: the header is deleted, so no further download can be built from it."""
    Grant.objects.filter(pk=grant.pk).delete()
