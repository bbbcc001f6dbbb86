"""A donor's files as the My files page shows them (issue 16 §9): when an unfinished
upload expires, which files repeat an earlier one, which listings use each file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from genomics.models import GenomicFile, Recompression
from genomics.selectors.files import file_list
from genomics.services.recompress import recompress_refusal
from genomics.services.uploads import upload_expires_at
from marketplace.models import Dataset, User

MAX_FILES = 200


@dataclass(frozen=True)
class FileRow:
    file: GenomicFile
    expires_at: datetime | None  # an unfinished upload: when it expires (tus Upload-Expires)
    expired: bool  # past that time (the sweep fails it within UPLOAD_EXPIRY_SWEEP_S)
    duplicate_of: str  # the name of an earlier file with the same plaintext SHA-256
    listed_in: tuple[str, ...]  # titles of the datasets that list it

    @property
    def state(self) -> str:
        return "expired" if self.expired else self.file.state

    @property
    def can_cancel(self) -> bool:
        return self.file.state == GenomicFile.State.RECEIVING

    @property
    def can_delete(self) -> bool:
        ended = (GenomicFile.State.READY, GenomicFile.State.FAILED)
        return self.file.state in ended and not self.listed_in

    @property
    def recompression(self) -> Recompression | None:
        """Its bgzipped copy, once asked for (README "Storing a VCF bgzipped")."""
        try:
            return self.file.recompression
        except Recompression.DoesNotExist:
            return None

    @property
    def recompressing(self) -> bool:
        found = self.recompression
        return found is not None and found.state in (
            Recompression.State.QUEUED,
            Recompression.State.WORKING,
        )

    @property
    def not_sliceable(self) -> bool:
        """A ready VCF that researchers can fetch whole only (not bgzipped)."""
        return recompress_refusal(self.file) is None

    @property
    def can_recompress(self) -> bool:
        return self.not_sliceable and not self.recompressing


def donor_file_rows(*, donor: User) -> list[FileRow]:
    """The donor's newest files (at most MAX_FILES), newest first."""
    files = list(file_list(owner=donor).order_by("-created_at")[:MAX_FILES])
    listed: dict[str, list[str]] = {}
    through = Dataset.files.through.objects.filter(genomicfile_id__in=[f.pk for f in files])
    for file_id, title in through.values_list("genomicfile_id", "dataset__title"):
        listed.setdefault(str(file_id), []).append(title)
    # The first (oldest) file with each plaintext checksum is the original; a file stored
    # bgzipped is still the one the donor uploaded (its upload's checksum counts too).
    first_by_sha: dict[str, GenomicFile] = {}
    for f in sorted(files, key=lambda f: f.created_at):
        if f.state == GenomicFile.State.READY:
            for sha in _checksums(f):
                first_by_sha.setdefault(sha, f)
    now = timezone.now()
    rows = []
    for f in files:
        found = [first_by_sha[sha] for sha in _checksums(f) if sha in first_by_sha]
        original = min(found, key=lambda g: g.created_at) if found else None
        expires_at = upload_expires_at(f)
        rows.append(
            FileRow(
                file=f,
                expires_at=expires_at,
                expired=expires_at is not None and expires_at <= now,
                duplicate_of=original.filename if original and original.pk != f.pk else "",
                listed_in=tuple(listed.get(str(f.pk), ())),
            )
        )
    return rows


def _checksums(file: GenomicFile) -> list[str]:
    """The plaintext checksums that name `file`: the stored one, and the upload's when the
    vault stored it bgzipped."""
    shas = [file.plaintext_sha256] if file.plaintext_sha256 else []
    try:
        uploaded = file.recompression.uploaded_plaintext_sha256
    except Recompression.DoesNotExist:
        uploaded = ""
    if uploaded and uploaded not in shas:
        shas.append(uploaded)
    return shas
