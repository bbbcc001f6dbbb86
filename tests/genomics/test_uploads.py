"""tus 1.0.0 uploads: encrypted as they arrive, resumable, bounded, and clean on failure."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
from crypt4gh import lib as reference
from django.test import Client

from genomics.models import GenomicFile, PayloadPart, UploadState
from marketplace.models import Role
from tests.genomics.conftest import create_upload, patch, tus_headers, upload

pytestmark = pytest.mark.django_db

VCF = (
    b"##fileformat=VCFv4.2\n##contig=<ID=chr1,length=248956422>\n"
    b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tDONOR_SECRET_ID\n"
    + b"".join(b"chr1\t%d\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n" % (i * 10 + 1) for i in range(20000))
)


def stored_bytes(root: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


def test_options_announces_the_protocol(donor_client, archive_key) -> None:
    client, _ = donor_client
    response = client.options("/api/v1/uploads/")
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert "creation" in response["Tus-Extension"] and "termination" in response["Tus-Extension"]


def test_plaintext_is_encrypted_as_it_arrives(
    donor_client, archive_key, settings, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    with django_capture_on_commit_callbacks():
        location = upload(client, VCF, chunk=100_000)
    stored = GenomicFile.objects.get()
    assert stored.state == GenomicFile.State.INGESTING
    assert stored.source == GenomicFile.Source.PLAINTEXT
    assert not UploadState.objects.exists()  # the data key is gone once complete
    on_disk = stored_bytes(Path(settings.MEDIA_ROOT))
    assert len(on_disk) == stored.payload_size > len(VCF)
    assert b"DONOR_SECRET_ID" not in on_disk and b"fileformat" not in on_disk
    head = client.head(location, **tus_headers())
    assert head["Upload-Offset"] == str(len(VCF))


def test_partial_segment_waits_encrypted_in_the_database(
    donor_client, archive_key, settings
) -> None:
    client, _ = donor_client
    location = create_upload(client, len(VCF))
    assert patch(client, location, 0, VCF[:1000]).status_code == 204
    state = UploadState.objects.get()
    assert len(bytes(state.pending or b"")) > 1000  # nonce + ciphertext + tag
    assert VCF[:100] not in bytes(state.pending or b"")
    assert b"fileformat" not in bytes(state.wrapped_data_key)
    assert stored_bytes(Path(settings.MEDIA_ROOT)) == b""


def test_an_interrupted_upload_resumes_from_its_offset(
    donor_client, archive_key, archive_secret, worker
) -> None:
    client, _ = donor_client
    location = create_upload(client, len(VCF))
    cut = 123_457
    assert patch(client, location, 0, VCF[:cut]).status_code == 204
    # The client lost track; HEAD tells where to go on.
    offset = int(client.head(location, **tus_headers())["Upload-Offset"])
    assert offset == cut
    wrong = patch(client, location, 0, VCF)
    assert wrong.status_code == 409
    assert wrong.json()["error"]["code"] == "offset_mismatch"
    assert patch(client, location, offset, VCF[offset:]).status_code == 204
    stored = GenomicFile.objects.get()
    out = io.BytesIO()
    payload = b"".join(_read(part) for part in PayloadPart.objects.all())
    reference.decrypt(
        [(0, archive_secret, None)], io.BytesIO(bytes(stored.header or b"") + payload), out
    )
    assert out.getvalue() == VCF


def _read(part: PayloadPart) -> bytes:
    from django.core.files.storage import default_storage

    with default_storage.open(part.storage_name) as handle:
        return handle.read()


def test_a_crypt4gh_file_is_stored_as_it_comes(donor_client, archive_key) -> None:
    client, _ = donor_client
    donor_secret = os.urandom(32)
    encrypted = io.BytesIO()
    reference.encrypt(
        [(0, donor_secret, bytes(archive_key.public_key))], io.BytesIO(VCF), encrypted
    )
    data = encrypted.getvalue()
    location = create_upload(client, len(data), "sample.vcf.c4gh")
    for start, end in ((0, 5), (5, 60), (60, len(data))):  # the header arrives in pieces
        assert patch(client, location, start, data[start:end]).status_code == 204
    stored = GenomicFile.objects.get()
    assert stored.source == GenomicFile.Source.CRYPT4GH
    assert bytes(stored.header or b"") + b"".join(_read(p) for p in stored.parts.all()) == data


def test_a_forged_crypt4gh_header_is_refused_and_leaves_nothing(
    donor_client, archive_key, settings, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    data = b"crypt4gh" + (1).to_bytes(4, "little") + (1).to_bytes(4, "little") + b"\x05\x00\x00\x00"
    location = create_upload(client, len(data) + 100)
    with django_capture_on_commit_callbacks(execute=True):
        response = patch(client, location, 0, data + bytes(100))
    assert response.status_code == 400
    assert "packet" in response.json()["error"]["message"]
    stored = GenomicFile.objects.get()
    assert stored.state == GenomicFile.State.FAILED
    assert not PayloadPart.objects.exists() and not UploadState.objects.exists()
    assert stored_bytes(Path(settings.MEDIA_ROOT)) == b""


def test_over_the_size_limit_is_refused_before_any_byte(
    donor_client, archive_key, settings
) -> None:
    settings.UPLOAD_MAX_BYTES = 1000
    client, _ = donor_client
    response = client.post("/api/v1/uploads/", **tus_headers(upload_length="1001"))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"
    assert not GenomicFile.objects.exists()


def test_the_quota_counts_earlier_uploads(donor_client, archive_key, settings) -> None:
    settings.UPLOAD_QUOTA_BYTES = 1500
    client, _ = donor_client
    create_upload(client, 1000)
    response = client.post(
        "/api/v1/uploads/",
        **tus_headers(
            upload_length="600", upload_metadata="filename " + base64.b64encode(b"b.vcf").decode()
        ),
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "quota_exceeded"


def test_a_patch_longer_than_announced_is_refused(donor_client, archive_key) -> None:
    client, _ = donor_client
    location = create_upload(client, 10)
    assert patch(client, location, 0, b"x" * 11).status_code == 413


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "a/b.vcf", "bad\x00name.vcf", "new\nline.vcf", "", ".."]
)
def test_bad_filenames_are_refused(donor_client, archive_key, name: str) -> None:
    client, _ = donor_client
    metadata = "filename " + base64.b64encode(name.encode()).decode()
    response = client.post(
        "/api/v1/uploads/", **tus_headers(upload_length="10", upload_metadata=metadata)
    )
    assert response.status_code == 400
    assert "filename" in response.json()["error"]["fields"]
    assert not GenomicFile.objects.exists()


def test_an_empty_file_is_refused(donor_client, archive_key) -> None:
    client, _ = donor_client
    response = client.post("/api/v1/uploads/", **tus_headers(upload_length="0"))
    assert response.status_code == 400


def test_protocol_errors_are_clear(donor_client, archive_key) -> None:
    client, _ = donor_client
    assert client.post("/api/v1/uploads/", HTTP_UPLOAD_LENGTH="5").status_code == 412
    bad_length = client.post("/api/v1/uploads/", **tus_headers(upload_length="-5"))
    assert bad_length.status_code == 400
    location = create_upload(client, 10)
    wrong_type = client.generic(
        "PATCH", location, b"x", content_type="text/plain", **tus_headers(upload_offset="0")
    )
    assert wrong_type.status_code == 415
    assert wrong_type["Tus-Resumable"] == "1.0.0"


def test_termination_deletes_the_upload_and_its_bytes(
    donor_client, archive_key, settings, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    big = VCF * 20  # over one 8 MiB part, so a part is on disk before the end
    location = create_upload(client, len(big))
    assert patch(client, location, 0, big[: 9 * 1024 * 1024]).status_code == 204
    assert stored_bytes(Path(settings.MEDIA_ROOT))
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(location, **tus_headers()).status_code == 204
    assert not GenomicFile.objects.exists()
    assert stored_bytes(Path(settings.MEDIA_ROOT)) == b""


def test_another_users_upload_is_not_found(donor_client, archive_key, make_user) -> None:
    client, _ = donor_client
    location = create_upload(client, 10)
    other = Client()
    other.force_login(make_user(Role.DONOR))
    assert other.head(location, **tus_headers()).status_code == 404
    assert patch(other, location, 0, b"x").status_code == 404


def test_uploads_need_an_account(archive_key) -> None:
    response = Client().post("/api/v1/uploads/", **tus_headers(upload_length="10"))
    assert response.status_code in (401, 403)
