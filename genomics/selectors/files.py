"""Reads of stored files."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet

from core.errors import NotFound
from genomics.models import ArchiveKey, GenomicFile


def file_list(*, owner: AbstractBaseUser) -> QuerySet[GenomicFile]:
    # Region objects (a tier's slices) are the tier's, listed with it, not as uploads.
    return (
        GenomicFile.objects.filter(owner_id=owner.pk, parent__isnull=True)
        .select_related("recompression")
        .defer("header")
    )


def file_get(*, owner: AbstractBaseUser, file_id: UUID | str) -> GenomicFile:
    """A file of `owner`; another owner's id answers like a missing one (404)."""
    found = (
        GenomicFile.objects.filter(pk=file_id, owner_id=owner.pk)
        .select_related("recompression")
        .defer("header")
        .first()
    )
    if found is None:
        raise NotFound("No such file.")
    return found


def archive_public_key() -> bytes | None:
    key = ArchiveKey.objects.filter(active=True).first()
    return bytes(key.public_key) if key else None
