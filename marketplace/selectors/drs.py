"""What a researcher may see through GA4GH DRS 1.4 (marketplace/ga4gh/drs.py): the files and
datasets of their live grants, and nothing else.

An object the caller holds no live grant for answers `NotFound`, exactly as an id that does
not exist (the same rule as the download route), so DRS never tells a stranger that an
object exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from core.errors import NotFound
from genomics.models import GenomicFile
from marketplace.models import AccessRequest, Dataset, User
from marketplace.selectors.scope import grants_file, request_files

LIVE = (AccessRequest.State.GRANTED, AccessRequest.State.SETTLED)
NO_SUCH_OBJECT = "No such object among your grants."


@dataclass(frozen=True)
class GrantedFile:
    file: GenomicFile
    request: AccessRequest  # the live request that grants it (the latest-ending one)


@dataclass(frozen=True)
class GrantedDataset:
    dataset: Dataset
    files: list[GenomicFile]  # the dataset's ready files, by filename


def _live_requests(researcher: User) -> QuerySet[AccessRequest]:
    now = timezone.now()
    return (
        AccessRequest.objects.filter(researcher=researcher, state__in=LIVE)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        # With several live grants of one object, the one that ends last (or never) serves.
        .order_by(F("expires_at").desc(nulls_first=True), "-created_at")
    )


def _uuid(object_id: str) -> UUID:
    try:
        return UUID(object_id)
    except ValueError:
        raise NotFound(NO_SUCH_OBJECT) from None


def drs_granted_file(*, researcher: User, object_id: str) -> GrantedFile | None:
    """The ready file `object_id` with the live request that grants it to `researcher`;
    None when `object_id` names no file this researcher may read (it may be a dataset)."""
    file_id = _uuid(object_id)
    request = _live_requests(researcher).filter(grants_file(file_id)).first()
    if request is None:
        return None
    file = GenomicFile.objects.filter(pk=file_id, state=GenomicFile.State.READY).first()
    return GrantedFile(file, request) if file is not None else None


def drs_granted_dataset(*, researcher: User, object_id: str) -> GrantedDataset | None:
    """The dataset `object_id` when `researcher` holds a live grant of it, else None."""
    dataset_id = _uuid(object_id)
    granted = (
        _live_requests(researcher).filter(dataset_id=dataset_id).select_related("dataset").first()
    )
    if granted is None:
        return None
    # A tier's grantee sees the bundle of its region objects, never the full files.
    files = list(
        request_files(granted).filter(state=GenomicFile.State.READY).order_by("filename", "pk")
    )
    return GrantedDataset(granted.dataset, files)


def drs_granted_object(*, researcher: User, object_id: str) -> GrantedFile | GrantedDataset:
    """A DRS object id names a file (a blob) or a dataset (a bundle of its files); both are
    UUIDs, so they never collide.

    Raises NotFound for anything `researcher` holds no live, unexpired grant of.
    """
    found: GrantedFile | GrantedDataset | None = drs_granted_file(
        researcher=researcher, object_id=object_id
    )
    if found is None:
        found = drs_granted_dataset(researcher=researcher, object_id=object_id)
    if found is None:
        raise NotFound(NO_SUCH_OBJECT)
    return found
