"""Reads of the archive keys and of a rotation's progress."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from genomics.models import ArchiveKey, GenomicFile


@dataclass(frozen=True)
class RotationProgress:
    """Where a rotation stands: files moved of those the retiring key had, and those
    still receiving bytes (they move once complete)."""

    retiring_key: ArchiveKey | None
    moved: int
    remaining: int
    receiving: int

    @property
    def done(self) -> bool:
        return self.retiring_key is None


def archive_key_rotation_progress() -> RotationProgress:
    """The rotation in progress, if any (the oldest retiring key)."""
    retiring = (
        ArchiveKey.objects.filter(active=False, retired_at__isnull=True)
        .order_by("created_at")
        .first()
    )
    if retiring is None:
        return RotationProgress(None, 0, 0, 0)
    counts = GenomicFile.objects.filter(archive_key=retiring).aggregate(
        remaining=Count("pk"),
        receiving=Count("pk", filter=Q(state=GenomicFile.State.RECEIVING)),
    )
    remaining = int(counts["remaining"])
    return RotationProgress(
        retiring,
        max(retiring.rotation_files - remaining, 0),
        remaining,
        int(counts["receiving"]),
    )


def archive_key_list() -> list[ArchiveKey]:
    """Every archive key, newest first, with its period: researchers check an old
    download's origin with `crypt4gh decrypt --sender_pk` against the key of its time."""
    return list(ArchiveKey.objects.order_by("-created_at", "-pk"))
