"""From upload to download: ingest in the worker, a grant for a researcher's key, and the
download (header + payload) with Range and HEAD, decrypted by the reference package."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from crypt4gh import lib as reference
from django.test import RequestFactory

from core.worker_secrets import NotInWorker
from genomics import c4gh
from genomics.downloads import grant_download_response
from genomics.models import GenomicFile, Grant
from genomics.services.grants import grant_create, grant_delete
from genomics.services.ingest import file_ingest
from tests.genomics import samples
from tests.genomics.conftest import create_upload, patch, upload

pytestmark = pytest.mark.django_db


def ingested(client, data: bytes, filename: str, chunk: int = 1 << 20) -> GenomicFile:
    upload(client, data, filename=filename, chunk=chunk)
    stored = GenomicFile.objects.get(filename=filename)
    file_ingest(file_id=str(stored.pk))
    stored.refresh_from_db()
    return stored


@pytest.fixture
def vcf_bytes(tmp_path) -> bytes:
    return samples.write_variants(tmp_path / "x.vcf", "w", records=30000).read_bytes()


def test_ingest_makes_a_ready_file_with_metadata(
    donor_client, archive_key, worker, vcf_bytes
) -> None:
    client, _ = donor_client
    stored = ingested(client, vcf_bytes, "cohort.vcf.gz")
    assert stored.state == GenomicFile.State.READY, stored.error
    assert stored.progress == 1.0
    assert stored.format == "VCF"
    assert stored.metadata["records"] == 30000 and stored.metadata["samples"] == 2
    assert stored.plaintext_sha256 == hashlib.sha256(vcf_bytes).hexdigest()
    assert stored.plaintext_size == len(vcf_bytes)
    assert len(stored.payload_sha256) == 64
    detail = client.get(f"/api/v1/files/{stored.pk}").json()
    assert detail["state"] == "ready" and detail["size"] == len(vcf_bytes)
    assert detail["metadata"]["reference_build"] == "GRCh38"
    assert "DONOR_SECRET" not in str(detail)


def test_ingest_of_a_reference_encrypted_file(donor_client, archive_key, worker, vcf_bytes) -> None:
    client, _ = donor_client
    encrypted = io.BytesIO()
    reference.encrypt(
        [(0, os.urandom(32), bytes(archive_key.public_key))], io.BytesIO(vcf_bytes), encrypted
    )
    stored = ingested(client, encrypted.getvalue(), "cohort.vcf.gz.c4gh")
    assert stored.state == GenomicFile.State.READY, stored.error
    assert stored.plaintext_sha256 == hashlib.sha256(vcf_bytes).hexdigest()


def test_a_file_encrypted_for_another_recipient_fails_clearly(
    donor_client, archive_key, worker, vcf_bytes, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    _, someone_else = c4gh.generate_keypair()
    encrypted = io.BytesIO()
    reference.encrypt([(0, os.urandom(32), someone_else)], io.BytesIO(vcf_bytes), encrypted)
    with django_capture_on_commit_callbacks(execute=True):
        stored = ingested(client, encrypted.getvalue(), "wrong.c4gh")
    assert stored.state == GenomicFile.State.FAILED
    assert "another recipient" in stored.error and "archive" in stored.error
    assert not stored.parts.exists()


def test_a_bad_file_fails_with_the_line(donor_client, archive_key, worker) -> None:
    client, _ = donor_client
    stored = ingested(client, b"##fileformat=VCFv4.2\n#CHROM\tPOS\n", "broken.vcf")
    assert stored.state == GenomicFile.State.FAILED
    assert stored.error.startswith("Line 2")


@pytest.mark.parametrize(("kind", "records"), [("VCF", 6000), ("BAM", 4000)], ids=["vcf.gz", "bam"])
def test_a_file_cut_at_a_bgzf_block_boundary_fails_as_truncated(
    donor_client, archive_key, worker, tmp_path, kind: str, records: int
) -> None:
    """Issue 14 item 1: the whole file is ready with htslib's count; the same file without
    its last data block and EOF block (whole blocks only) fails as truncated."""
    client, _ = donor_client
    if kind == "VCF":
        whole = samples.write_variants(tmp_path / "a.vcf.gz", "wz", records=records)
    else:
        whole = samples.write_alignments(tmp_path / "a.bam", "wb", reads=records)
    data = whole.read_bytes()
    ready = ingested(client, data, f"whole.{kind.lower()}")
    assert ready.state == GenomicFile.State.READY, ready.error
    assert ready.metadata["records"] == records
    cut = ingested(client, samples.cut_before_last_data_block(data), f"cut.{kind.lower()}")
    assert cut.state == GenomicFile.State.FAILED
    assert f"The {kind} file is truncated" in cut.error
    assert cut.metadata.get("records") is None


def test_a_pre_encrypted_file_missing_its_last_segment_fails_as_truncated(
    donor_client, archive_key, worker, tmp_path
) -> None:
    """Crypt4GH v1 cannot tell a payload that lost its last whole segments (no end marker,
    and the vault does not know a pre-encrypted file's plaintext size): the inner format's
    end (here the BGZF EOF block) is what refuses it."""
    client, _ = donor_client
    plain = samples.write_variants(tmp_path / "big.vcf.gz", "wz", records=60000).read_bytes()
    assert len(plain) > 2 * 65536
    encrypted = io.BytesIO()
    reference.encrypt(
        [(0, os.urandom(32), bytes(archive_key.public_key))], io.BytesIO(plain), encrypted
    )
    last_segment = (len(plain) % 65536 or 65536) + 12 + 16  # nonce + ciphertext + MAC
    whole = ingested(client, encrypted.getvalue(), "whole.vcf.gz.c4gh")
    assert whole.state == GenomicFile.State.READY, whole.error
    cut = ingested(client, encrypted.getvalue()[:-last_segment], "cut.vcf.gz.c4gh")
    assert cut.state == GenomicFile.State.FAILED
    assert "The VCF file is truncated" in cut.error


def test_a_23andme_file_saved_on_windows_is_ready(donor_client, archive_key, worker) -> None:
    """Issue 14 item 3: a UTF-8 BOM and CR+LF line ends, as Notepad and Excel save it."""
    client, _ = donor_client
    data = b"\xef\xbb\xbf" + samples.twenty_three_and_me().replace(b"\n", b"\r\n")
    stored = ingested(client, data, "genome.txt")
    assert stored.state == GenomicFile.State.READY, stored.error
    assert (stored.format, stored.metadata["records"]) == ("23andMe", 50)
    assert stored.plaintext_sha256 == hashlib.sha256(data).hexdigest()


def test_a_23andme_zip_download_is_ready_with_its_files_checksum(
    donor_client, archive_key, worker
) -> None:
    """Issue 14 item 3: the .zip as 23andMe ships it; what is published is the .txt's
    SHA-256, and the stored (and delivered) bytes are the ZIP's."""
    import zipfile

    client, _ = donor_client
    raw = samples.twenty_three_and_me()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("genome_Jane_Doe_v5_Full.txt", raw)
    stored = ingested(client, archive.getvalue(), "genome_Jane_Doe_v5_Full.zip")
    assert stored.state == GenomicFile.State.READY, stored.error
    assert (stored.format, stored.metadata["container"]) == ("23andMe", "zip")
    assert stored.plaintext_sha256 == hashlib.sha256(raw).hexdigest()
    assert stored.plaintext_size == len(archive.getvalue())
    assert "Jane" not in str(stored.metadata)


def test_ingest_twice_does_nothing_the_second_time(
    donor_client, archive_key, worker, vcf_bytes
) -> None:
    client, _ = donor_client
    stored = ingested(client, vcf_bytes, "a.vcf.gz")
    ready_at = stored.ready_at
    file_ingest(file_id=str(stored.pk))
    stored.refresh_from_db()
    assert stored.ready_at == ready_at


def test_the_web_process_cannot_read_the_archive_key(donor_client, archive_key, vcf_bytes) -> None:
    client, _ = donor_client
    upload(client, vcf_bytes, filename="a.vcf.gz")
    with pytest.raises(NotInWorker):
        file_ingest(file_id=str(GenomicFile.objects.get().pk))


@pytest.fixture
def granted(donor_client, archive_key, worker, vcf_bytes):
    client, _ = donor_client
    # Uploaded in pieces: several payload parts, each of several segments.
    stored = ingested(client, vcf_bytes, "big.vcf", chunk=300_000)
    assert stored.parts.count() > 1
    secret, public = c4gh.generate_keypair()
    return grant_create(file=stored, recipient_public_key=public), secret, vcf_bytes


def download(grant: Grant, method: str = "GET", **headers: str):
    request = getattr(RequestFactory(), method.lower())("/download", **headers)
    response = grant_download_response(request, grant=grant, filename=grant.file.filename)
    body = (
        b"".join(response.streaming_content)
        if hasattr(response, "streaming_content")
        else response.content  # type: ignore[attr-defined]
    )
    return response, body


def test_a_grant_is_idempotent_and_small(granted) -> None:
    grant, _, _ = granted
    again = grant_create(file=grant.file, recipient_public_key=bytes(grant.recipient_public_key))
    assert again.pk == grant.pk
    assert len(bytes(grant.header)) < 200


def test_a_download_decrypts_with_the_reference_to_the_donors_bytes(granted) -> None:
    grant, secret, plaintext = granted
    response, body = download(grant)
    assert response.status_code == 200
    assert int(response["Content-Length"]) == len(body)
    out = io.BytesIO()
    reference.decrypt([(0, secret, None)], io.BytesIO(body), out)
    assert out.getvalue() == plaintext


def test_range_reads_across_segment_boundaries(granted) -> None:
    grant, _, _ = granted
    _, whole = download(grant)
    header = len(bytes(grant.header))
    boundary = header + c4gh.CIPHER_SEGMENT_SIZE
    for start, end in (
        (0, 10),
        (boundary - 5, boundary + 5),
        (header - 3, header + 3),
        (boundary - 1, len(whole) - 1),
    ):
        response, body = download(grant, HTTP_RANGE=f"bytes={start}-{end}")
        assert response.status_code == 206
        assert response["Content-Range"] == f"bytes {start}-{end}/{len(whole)}"
        assert body == whole[start : end + 1]
        assert int(response["Content-Length"]) == len(body)
    response, body = download(grant, HTTP_RANGE="bytes=-100")
    assert body == whole[-100:]
    response, body = download(grant, HTTP_RANGE=f"bytes={len(whole) - 50}-")
    assert body == whole[-50:]


def test_unsatisfiable_range_and_head(granted) -> None:
    grant, _, _ = granted
    _, whole = download(grant)
    response, _ = download(grant, HTTP_RANGE=f"bytes={len(whole)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(whole)}"
    response, body = download(grant, method="HEAD")
    assert response.status_code == 200 and body == b""
    assert int(response["Content-Length"]) == len(whole)


def test_etag_is_stable_and_if_range_guards_resumes(granted) -> None:
    grant, _, _ = granted
    first, whole = download(grant)
    second, _ = download(grant)
    assert first["ETag"] == second["ETag"]
    stale, body = download(grant, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200 and body == whole


def test_revoking_deletes_the_grant_header(granted) -> None:
    grant, _, _ = granted
    grant_delete(grant=grant)
    assert not Grant.objects.filter(pk=grant.pk).exists()


def test_a_grant_needs_a_ready_file(donor_client, archive_key, worker) -> None:
    client, _ = donor_client
    location = create_upload(client, 100)
    patch(client, location, 0, b"x" * 10)
    stored = GenomicFile.objects.get()
    from core.errors import Conflict

    with pytest.raises(Conflict):
        grant_create(file=stored, recipient_public_key=c4gh.generate_keypair()[1])
