"""My files (issue 16 §9): delete a file no listing uses (its stored bytes go), cancel an
upload in progress, upload a failed one again, see when an interrupted upload expires,
hear of a duplicate by its plaintext checksum, and read what each file is (container
first: "BAM (SAM header v1.4)")."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import cast

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from genomics.models import GenomicFile, PayloadPart
from marketplace.models import AuditEntry, Dataset, Role, User
from marketplace.services.audit import audit_views
from tests.factories import UserFactory, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


def _stored(file: GenomicFile) -> str:
    """One payload part in storage, recorded as the vault records it."""
    name = default_storage.save(f"payloads/{file.payload_key}/0", ContentFile(b"c" * 64))
    PayloadPart.objects.create(file=file, payload_offset=0, size=64, storage_name=name)
    return name


def _row(page: str, file: GenomicFile) -> str:
    match = re.search(rf'<tr data-file="{file.pk}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {file.filename}"
    return match.group(1)


def test_a_donor_deletes_a_file_no_listing_uses_and_its_bytes_go(
    django_capture_on_commit_callbacks,
) -> None:
    donor = cast(User, UserFactory(role=Role.DONOR))
    loose, listed = ready_file(donor, filename="loose.vcf.gz"), ready_file(donor)
    names = [_stored(loose), _stored(listed)]
    dataset = Dataset.objects.create(donor=donor, title="Trio", price=1, access_days=1)
    dataset.files.set([listed])
    client = logged_in(donor)
    page = client.get("/files/").content.decode()
    assert "Delete loose.vcf.gz" in _row(page, loose)
    assert "Delete" not in _row(page, listed) and "Listed in Trio" in _row(page, listed)

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(f"/files/{loose.pk}/delete", follow=True)
    assert "Deleted loose.vcf.gz" in done.content.decode()
    assert not GenomicFile.objects.filter(pk=loose.pk).exists()
    assert not default_storage.exists(names[0]) and default_storage.exists(names[1])
    entry = AuditEntry.objects.get(action="file.delete")
    # A file name is the donor's own words: beside the hashed entry (README "Donors' rights").
    assert entry.object_id == str(loose.pk) and "filename" not in entry.data
    assert audit_views([entry])[0].fields["filename"] == "loose.vcf.gz"

    refused = client.post(f"/files/{listed.pk}/delete", follow=True)
    assert "a listed file cannot be deleted" in refused.content.decode()
    assert GenomicFile.objects.filter(pk=listed.pk).exists()
    # Someone else's file answers like a missing one.
    other = logged_in(cast(User, UserFactory(role=Role.DONOR)))
    assert "No such file" in other.post(f"/files/{listed.pk}/delete", follow=True).content.decode()


def test_a_donor_cancels_an_upload_in_progress(django_capture_on_commit_callbacks) -> None:
    donor = cast(User, UserFactory(role=Role.DONOR))
    receiving = ready_file(donor, filename="half.vcf")
    GenomicFile.objects.filter(pk=receiving.pk).update(
        state=GenomicFile.State.RECEIVING, upload_offset=10, plaintext_sha256=""
    )
    name = _stored(receiving)
    client = logged_in(donor)
    row = _row(client.get("/files/").content.decode(), receiving)
    assert "Cancel upload" in row and "Delete" not in row
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(f"/files/{receiving.pk}/cancel", follow=True)
    assert "Upload cancelled" in done.content.decode()
    assert not GenomicFile.objects.filter(pk=receiving.pk).exists()
    assert not default_storage.exists(name)


def test_an_interrupted_upload_says_when_it_expires_and_then_that_it_has(settings) -> None:
    settings.UPLOAD_EXPIRES_AFTER_S = 3600
    donor = cast(User, UserFactory(role=Role.DONOR))
    waiting, stale = ready_file(donor, filename="w.vcf"), ready_file(donor, filename="s.vcf")
    now = timezone.now()
    GenomicFile.objects.filter(pk=waiting.pk).update(state="receiving", updated_at=now)
    GenomicFile.objects.filter(pk=stale.pk).update(
        state="receiving", updated_at=now - timedelta(hours=2)
    )
    page = logged_in(donor).get("/files/").content.decode()
    expires = timezone.localtime(now + timedelta(hours=1)).strftime("%-d %b %Y %H:%M")
    assert f"before {expires}" in _row(page, waiting)
    row = _row(page, stale)
    assert ">Expired<" in row and "cannot be resumed" in row and "Upload again" in row
    assert "Receiving" not in row


def test_a_failed_upload_offers_a_new_upload_and_stays_failed() -> None:
    donor = cast(User, UserFactory(role=Role.DONOR))
    failed = ready_file(donor, filename="bad.vcf")
    GenomicFile.objects.filter(pk=failed.pk).update(state="failed", error="Line 3: bad.")
    row = _row(logged_in(donor).get("/files/").content.decode(), failed)
    # Retry is a new upload of the same file (tus: an ended upload is never resumed).
    assert '<label class="button small secondary" for="upload-file" data-retry>' in row
    assert "Delete bad.vcf" in row


def test_a_duplicate_is_named_by_its_plaintext_checksum() -> None:
    donor = cast(User, UserFactory(role=Role.DONOR))
    first = ready_file(donor, filename="trio.vcf.gz")
    again = ready_file(donor, filename="trio-copy.vcf.gz")  # the same plaintext SHA-256
    other = ready_file(donor, filename="other.vcf.gz")
    GenomicFile.objects.filter(pk=other.pk).update(plaintext_sha256="cd" * 32)
    page = logged_in(donor).get("/files/").content.decode()
    assert "You already have this file as trio.vcf.gz" in _row(page, again)
    assert "You already have" not in _row(page, first)
    assert "You already have" not in _row(page, other)


@pytest.mark.parametrize(
    ("fmt", "version", "shown"),
    [
        ("BAM", "SAM header v1.4", "BAM (SAM header v1.4)"),  # stored before the relabel
        ("CRAM", "SAM header v1.6", "CRAM (SAM header v1.6)"),
        ("BAM", "BAM (SAM v1.6)", "BAM (SAM v1.6)"),
        ("SAM", "SAM v1.6", "SAM v1.6"),
        ("VCF", "VCFv4.2", "VCFv4.2"),
        ("FASTQ", "", "FASTQ"),
    ],
)
def test_a_file_is_labelled_by_its_format_first(fmt: str, version: str, shown: str) -> None:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    stored = ready_file(donor, fmt=fmt)
    GenomicFile.objects.filter(pk=stored.pk).update(
        metadata={**stored.metadata, "format_version": version}
    )
    files_row = _row(logged_in(donor).get("/files/").content.decode(), stored)
    assert f'<td data-label="Format">{shown}</td>' in files_row
    dataset = Dataset.objects.create(
        donor=donor,
        title="Reads",
        price=1,
        access_days=1,
        metadata={"files": [{"format": fmt, "format_version": version}]},
    )
    page = logged_in(donor).get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'<td data-label="Format">{shown}</td>' in page
