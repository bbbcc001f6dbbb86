"""Grants (worker): a new header for a recipient's key, O(1) in the file's size."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from core.errors import Conflict
from genomics import c4gh
from genomics.archive_secret import archive_secret_key
from genomics.models import GenomicFile, Grant


def grant_create(*, file: GenomicFile, recipient_public_key: bytes) -> Grant:
    """Re-encrypt the file's header for `recipient_public_key`; idempotent per key."""
    key = c4gh.parse_public_key(recipient_public_key)
    existing = Grant.objects.filter(file=file, recipient_public_key=key).first()
    if existing is not None:
        return existing
    if file.state != GenomicFile.State.READY or file.header is None:
        raise Conflict("Only a ready file can be granted.")
    assert file.archive_key is not None
    header = c4gh.reencrypt_header(bytes(file.header), archive_secret_key(file.archive_key), key)
    try:
        with transaction.atomic():
            return Grant.objects.create(file=file, recipient_public_key=key, header=header)
    except IntegrityError:  # a concurrent grant for the same key committed first
        return Grant.objects.get(file=file, recipient_public_key=key)


def grant_delete(*, grant: Grant) -> None:
    """Revoke: the header is deleted, so no further download can be built from it."""
    Grant.objects.filter(pk=grant.pk).delete()
