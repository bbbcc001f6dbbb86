"""Every end of a tus upload answers so that a standard client starts over (tus 1.0.0 core,
HEAD: 404/410/403 without Upload-Offset; expiration extension: 410 for expired uploads):
refused while arriving, failed at ingest, expired, terminated. A complete upload still
answers 200 with offset == length, so clients see it as done."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django.utils.http import parse_http_date

from genomics.models import GenomicFile, PayloadPart, UploadState
from genomics.services.ingest import file_ingest
from genomics.services.uploads import uploads_expire
from tests.genomics.conftest import create_upload, patch, tus_headers, upload

pytestmark = pytest.mark.django_db

# A Crypt4GH preamble of a version this archive does not read (Crypt4GH §3.2: version 1).
UNSUPPORTED_C4GH = b"crypt4gh" + (2).to_bytes(4, "little") + (1).to_bytes(4, "little")
VCF = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + b"".join(
    b"1\t%d\t.\tC\tT\t.\tPASS\t.\n" % (i + 1) for i in range(2000)
)


def assert_gone(client, location: str, offset: int, why: str) -> None:
    head = client.head(location, **tus_headers())
    assert head.status_code == 410
    assert "Upload-Offset" not in head  # tus core: a gone resource has no offset
    assert head["Tus-Resumable"] == "1.0.0"
    again = patch(client, location, offset, b"x")
    assert again.status_code == 410  # not 409: tus-js-client retries 409 six times
    error = again.json()["error"]
    assert error["code"] == "upload_gone"
    assert why in error["message"] and "Start a new upload" in error["message"]


def test_a_refused_upload_is_gone_for_head_and_patch(
    donor_client, archive_key, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    body = UNSUPPORTED_C4GH + bytes(200)
    location = create_upload(client, len(body), "sample.vcf.c4gh")
    with django_capture_on_commit_callbacks(execute=True):
        refused = patch(client, location, 0, body)
    assert refused.status_code == 400
    assert "version 2 is not supported" in refused.json()["error"]["message"]
    assert_gone(client, location, 0, "version 2 is not supported")


def test_an_upload_that_failed_ingest_is_gone_not_complete(
    donor_client, archive_key, worker, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    body = b"\x00\x01 not a genomic format at all \xff" * 100
    with django_capture_on_commit_callbacks(execute=False):
        location = upload(client, body, "sample.vcf")
    assert client.head(location, **tus_headers())["Upload-Offset"] == str(len(body))
    stored = GenomicFile.objects.get()
    file_ingest(file_id=str(stored.pk))
    stored.refresh_from_db()
    assert stored.state == GenomicFile.State.FAILED
    # Before: 200 with offset == length, which clients take as "uploaded, all is well".
    assert_gone(client, location, len(body), "cannot be resumed")


def test_an_upload_without_progress_expires(donor_client, archive_key, settings) -> None:
    settings.UPLOAD_EXPIRES_AFTER_S = 3600
    client, _ = donor_client
    location = create_upload(client, len(VCF))
    assert patch(client, location, 0, VCF[:1000]).status_code == 204
    head = client.head(location, **tus_headers())
    expires = parse_http_date(head["Upload-Expires"])
    assert abs(expires - (timezone.now() + timedelta(hours=1)).timestamp()) < 5
    GenomicFile.objects.update(updated_at=timezone.now() - timedelta(seconds=3601))
    assert_gone(client, location, 1000, "expired")


def test_progress_postpones_the_expiry(donor_client, archive_key, settings) -> None:
    settings.UPLOAD_EXPIRES_AFTER_S = 3600
    client, _ = donor_client
    location = create_upload(client, len(VCF))
    GenomicFile.objects.update(updated_at=timezone.now() - timedelta(seconds=3000))
    response = patch(client, location, 0, VCF[:1000])
    assert response.status_code == 204
    assert (
        parse_http_date(response["Upload-Expires"])
        > (timezone.now() + timedelta(seconds=3500)).timestamp()
    )
    assert client.head(location, **tus_headers()).status_code == 200


def test_the_sweep_fails_expired_uploads_and_deletes_their_bytes(
    donor_client, archive_key, settings, django_capture_on_commit_callbacks
) -> None:
    settings.UPLOAD_EXPIRES_AFTER_S = 3600
    client, _ = donor_client
    big = VCF * 600  # over one 8 MiB part, so bytes are in storage before the end
    stale = create_upload(client, len(big))
    assert patch(client, stale, 0, big[: 9 * 1024 * 1024]).status_code == 204
    fresh = create_upload(client, len(VCF), "fresh.vcf")
    GenomicFile.objects.filter(pk=stale.rsplit("/", 1)[1]).update(
        updated_at=timezone.now() - timedelta(hours=2)
    )
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    with django_capture_on_commit_callbacks(execute=True):
        assert uploads_expire() == 1
    expired = GenomicFile.objects.get(pk=stale.rsplit("/", 1)[1])
    assert expired.state == GenomicFile.State.FAILED and "expired" in expired.error
    assert not PayloadPart.objects.filter(file=expired).exists()
    assert not UploadState.objects.filter(file=expired).exists()
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    assert_gone(client, stale, 9 * 1024 * 1024, "expired")
    assert client.head(fresh, **tus_headers()).status_code == 200


def test_a_terminated_upload_is_not_found(
    donor_client, archive_key, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    location = create_upload(client, len(VCF))
    assert patch(client, location, 0, VCF[:1000]).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(location, **tus_headers()).status_code == 204
    head = client.head(location, **tus_headers())
    assert head.status_code == 404 and "Upload-Offset" not in head
    assert patch(client, location, 1000, b"x").status_code == 404


def test_a_complete_upload_still_reads_as_complete(
    donor_client, archive_key, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    with django_capture_on_commit_callbacks(execute=False):
        location = upload(client, VCF)
    head = client.head(location, **tus_headers())
    assert head.status_code == 200
    assert head["Upload-Offset"] == head["Upload-Length"] == str(len(VCF))
    assert "Upload-Expires" not in head
    assert patch(client, location, len(VCF), b"x").status_code == 409
