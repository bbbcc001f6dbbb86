"""A donor's files, as the marketplace sees them: deleting one no listing uses, asking
for a VCF to be stored bgzipped."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from core.errors import Conflict
from genomics.models import GenomicFile, Recompression
from genomics.selectors.files import file_get
from genomics.services.recompress import file_recompress_request
from genomics.services.uploads import stored_file_delete, upload_terminate
from marketplace.models import AccessRequest, Dataset, User
from marketplace.selectors.scope import grants_file
from marketplace.services.audit import audit_append
from marketplace.services.notifications import notify_user


def donor_file_delete(*, donor: User, file_id: UUID | str) -> str:
    """Delete one of `donor`'s ready or failed files and its stored payload (issue 16 §9);
    returns its file name. A file listed in a dataset, even a withdrawn or delisted one
    (its record names the file), is refused: withdraw consent or erase instead. Audited.
    Raises NotFound, Conflict."""
    with transaction.atomic():
        file_get(owner=donor, file_id=file_id)  # another donor's file: NotFound, first
        listed = list(Dataset.objects.filter(files__pk=file_id).values_list("title", flat=True))
        if listed:
            raise Conflict(
                "This file is listed in "
                + ", ".join(f"“{title}”" for title in listed[:3])
                + ": a listed file cannot be deleted."
            )
        deleted = stored_file_delete(owner=donor, file_id=file_id)
        audit_append(
            action="file.delete",
            actor=donor,
            object_type="file",
            object_id=file_id,
            data={
                "filename": deleted.filename,
                "state": deleted.state,
                "plaintext_sha256": deleted.plaintext_sha256,
            },
        )
    return deleted.filename


def donor_upload_cancel(*, donor: User, file_id: UUID | str) -> None:
    """Cancel an upload in progress (tus termination): the file and its bytes go."""
    upload_terminate(owner=donor, file_id=file_id)


def donor_file_recompress(*, donor: User, file_id: UUID | str) -> GenomicFile:
    """Ask the worker to store one of `donor`'s VCFs bgzipped (README "Storing a VCF
    bgzipped"), so researchers can read regions of it; returns the file, its
    `recompression` row queued (or as it already is, when asked twice). Audited as
    `file.recompress_request`; the worker's outcome is audited as `file.recompress`.
    Raises NotFound (not the donor's), Conflict (not a VCF, not ready, already bgzipped)."""
    with transaction.atomic():
        file = file_get(owner=donor, file_id=file_id)
        row = file_recompress_request(file=file)
        audit_append(
            action="file.recompress_request",
            actor=donor,
            object_type="file",
            object_id=file.pk,
            data={
                "filename": file.filename,
                "plaintext_sha256": file.plaintext_sha256,
                "state": row.state,
            },
        )
    return file_get(owner=donor, file_id=file_id)


RECOMPRESSED_DONOR = (
    "{uploaded} is now stored bgzipped, as {name}: researchers can read regions of it, and you "
    "can sell it by region. The records are the same; its SHA-256 is now {sha}… (your "
    "upload's, {uploaded_sha}…, is kept)."
)
RECOMPRESSED_GRANTEE = (
    "{name} in “{title}” is now stored bgzipped: the same records, and its SHA-256 is now "
    "{sha}. Download it again to read regions with htsget; a copy you downloaded before "
    "still holds the same records."
)
RECOMPRESS_FAILED_DONOR = "{name} could not be stored bgzipped; it is unchanged. {error}"


def file_recompressed_record(*, recompression: Recompression, file: GenomicFile) -> None:
    """The worker stored `file` bgzipped (inside the switch's transaction): the audit entry
    names both checksums and the grants re-issued, listings describe the file again
    (`datasets_file_changed`), and the donor and every live grantee are told."""
    from marketplace.services.datasets import datasets_file_changed

    changed = datasets_file_changed(file=file)
    audit_append(
        action="file.recompress",
        object_type="file",
        object_id=file.pk,
        data={
            "state": recompression.state,
            "uploaded_plaintext_sha256": recompression.uploaded_plaintext_sha256,
            "uploaded_compression": recompression.uploaded_compression,
            "plaintext_sha256": file.plaintext_sha256,
            "plaintext_size": file.plaintext_size,
            "payload_sha256": file.payload_sha256,
            "grants_reissued": recompression.grants_reissued,
            "datasets": [str(d.pk) for d in changed],
        },
    )
    owner = User.objects.get(pk=file.owner_id)
    notify_user(
        user=owner,
        link="/files/",
        message=RECOMPRESSED_DONOR.format(
            uploaded=recompression.uploaded_filename,
            name=file.filename,
            sha=file.plaintext_sha256[:16],
            uploaded_sha=recompression.uploaded_plaintext_sha256[:16],
        ),
    )
    live = AccessRequest.objects.filter(
        grants_file(file.pk), state__in=(AccessRequest.State.GRANTED, AccessRequest.State.SETTLED)
    ).select_related("researcher", "dataset")
    for request in live.distinct():
        notify_user(
            user=request.researcher,
            request=request,
            link=f"/requests/{request.pk}/",
            message=RECOMPRESSED_GRANTEE.format(
                name=file.filename, title=request.dataset.title, sha=file.plaintext_sha256
            ),
        )


def file_recompress_failed_record(*, recompression: Recompression, file: GenomicFile) -> None:
    """The worker could not store `file` bgzipped: audited, and its donor told why."""
    audit_append(
        action="file.recompress",
        object_type="file",
        object_id=file.pk,
        data={"state": recompression.state, "error": recompression.error},
    )
    notify_user(
        user=User.objects.get(pk=file.owner_id),
        link="/files/",
        message=RECOMPRESS_FAILED_DONOR.format(name=file.filename, error=recompression.error),
    )
