"""A donor's files, as the marketplace sees them: deleting one no listing uses."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from core.errors import Conflict
from genomics.selectors.files import file_get
from genomics.services.uploads import stored_file_delete, upload_terminate
from marketplace.models import Dataset, User
from marketplace.services.audit import audit_append


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
