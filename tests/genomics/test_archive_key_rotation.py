"""Rotating the archive key is one safe operation (issue 14.8): new files go to the new
key at once; the worker moves every stored header (and remakes every grant header with
the new key as writer) in batches that resume after a crash; the old key stays usable
until its last file has moved, then is retired and stays listed with its period.

The test rotates with files ready, mid-ingest and mid-upload, a grant made mid-rotation
and a donor's file encrypted to the old key after the rotation began, then decrypts every
file with the new key alone.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from crypt4gh import lib as reference
from django.core.management import call_command
from django.http import StreamingHttpResponse
from django.test import RequestFactory

from core.errors import Conflict
from core.worker_secrets import SecretMissing
from genomics import c4gh, payloads
from genomics.archive_secret import archive_secret_key, archive_secret_key_path
from genomics.downloads import grant_download_response
from genomics.models import ArchiveKey, GenomicFile, Grant
from genomics.services import archive_keys
from genomics.services.archive_keys import archive_key_create, archive_key_rotate_batch
from genomics.services.grants import grant_create
from genomics.services.ingest import file_ingest
from tests.genomics import samples
from tests.genomics.conftest import PASSPHRASE, create_upload, patch, upload

pytestmark = pytest.mark.django_db


def vcf(tmp_path: Path, name: str, records: int) -> bytes:
    return samples.write_variants(tmp_path / name, "w", records=records).read_bytes()


def stored(filename: str) -> GenomicFile:
    return GenomicFile.objects.select_related("archive_key").get(filename=filename)


def decrypt_with(secret: bytes, file: GenomicFile) -> bytes:
    """The file's plaintext, from its stored header and payload parts."""
    assert file.header is not None
    decrypted = c4gh.decrypt_header(bytes(file.header), secret)
    parts = list(file.parts.values_list("payload_offset", "size", "storage_name"))
    chunks = payloads.read_range(parts, 0, file.payload_size)
    return b"".join(c4gh.decrypt_stream(decrypted.data_keys, chunks))


def download(grant: Grant, reader_secret: bytes, sender_public: bytes) -> bytes:
    response = grant_download_response(
        RequestFactory().get("/download"), grant=grant, filename=grant.file.filename
    )
    assert isinstance(response, StreamingHttpResponse)
    out = io.BytesIO()
    reference.decrypt(
        [(0, reader_secret, None)],
        io.BytesIO(b"".join(response.streaming_content)),  # type: ignore[arg-type]
        out,
        sender_pubkey=sender_public,
    )
    return out.getvalue()


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    """Rotation tasks queued (run by hand here, in batches, to interleave other work)."""
    calls: list[str] = []
    monkeypatch.setattr(archive_keys, "_enqueue_rotation", lambda: calls.append("rotate"))
    return calls


def test_a_rotation_moves_every_file_and_grant_and_retires_the_old_key(
    donor_client,
    archive_key,
    worker,
    settings,
    tmp_path: Path,
    queued,
    django_capture_on_commit_callbacks,
) -> None:
    client, _ = donor_client
    old_public = bytes(archive_key.public_key)
    plaintexts = {f"ready{i}.vcf": vcf(tmp_path, f"r{i}.vcf", 300 + i) for i in range(3)}
    for name, data in plaintexts.items():
        upload(client, data, filename=name)
        file_ingest(file_id=str(stored(name).pk))
    alice, bob, carol = (c4gh.generate_keypair() for _ in range(3))
    grant_create(file=stored("ready0.vcf"), recipient_public_key=alice[1])
    grant_create(file=stored("ready0.vcf"), recipient_public_key=bob[1])
    plaintexts["ingesting.vcf"] = vcf(tmp_path, "i.vcf", 500)
    upload(client, plaintexts["ingesting.vcf"], filename="ingesting.vcf")  # not ingested yet
    plaintexts["receiving.vcf"] = vcf(tmp_path, "u.vcf", 400)
    half = len(plaintexts["receiving.vcf"]) // 2
    location = create_upload(client, len(plaintexts["receiving.vcf"]), "receiving.vcf")
    assert patch(client, location, 0, plaintexts["receiving.vcf"][:half]).status_code == 204

    with django_capture_on_commit_callbacks(execute=True):
        new_key = archive_key_create(
            secret_key_path=Path(settings.ARCHIVE_SECRET_KEY_FILE),
            passphrase=PASSPHRASE,
            replace=True,
        )
    new_public = bytes(new_key.public_key)
    new_secret = archive_secret_key(new_key)
    assert queued == ["rotate"]
    listed = client.get("/api/v1/archive-key").json()
    assert listed["public_key_base64"] == c4gh.public_key_base64(new_public)
    assert [k["state"] for k in listed["keys"]] == ["active", "retiring"]
    assert listed["rotation"] == {"files_moved": 0, "files_remaining": 5, "uploads_receiving": 1}
    with pytest.raises(Conflict):  # one rotation at a time
        archive_key_create(
            secret_key_path=Path(settings.ARCHIVE_SECRET_KEY_FILE),
            passphrase=PASSPHRASE,
            replace=True,
        )

    # A donor who fetched the old key before the rotation uploads a file encrypted to it.
    plaintexts["donor.vcf"] = vcf(tmp_path, "d.vcf", 350)
    data_key = c4gh.new_data_key()
    donor_file = c4gh.build_header(data_key, old_public) + c4gh.encrypt_segments(
        data_key, plaintexts["donor.vcf"]
    )
    upload(client, bytes(donor_file), filename="donor.vcf")
    assert stored("donor.vcf").archive_key_id == new_key.pk

    # Two files move; then the worker "crashes" and a later run resumes.
    progress = archive_key_rotate_batch(batch_size=2)
    assert (progress.moved, progress.remaining) == (2, 3)
    grant_create(file=stored("ready1.vcf"), recipient_public_key=carol[1])  # mid-rotation
    file_ingest(file_id=str(stored("ingesting.vcf").pk))  # mid-rotation, either key
    file_ingest(file_id=str(stored("donor.vcf").pk))  # encrypted to the retiring key
    progress = archive_key_rotate_batch()
    assert progress.remaining == progress.receiving == 1  # the upload in progress waits
    assert progress.retiring_key is not None
    assert archive_secret_key(progress.retiring_key)  # so the old key stays usable
    rest = plaintexts["receiving.vcf"][half:]
    assert patch(client, location, half, rest).status_code == 204
    file_ingest(file_id=str(stored("receiving.vcf").pk))
    progress = archive_key_rotate_batch()

    assert progress.done
    old = ArchiveKey.objects.get(public_key=old_public)
    assert old.state == "retired" and old.replaced_at and old.retired_at
    assert not archive_secret_key_path(old_public).exists()
    with pytest.raises(SecretMissing):
        archive_secret_key(old)
    for name, data in plaintexts.items():
        file = stored(name)
        assert file.state == GenomicFile.State.READY, (name, file.error)
        assert file.archive_key_id == new_key.pk
        assert decrypt_with(new_secret, file) == data, name
    researchers = {alice[1]: alice[0], bob[1]: bob[0], carol[1]: carol[0]}
    grants = list(Grant.objects.select_related("file"))
    assert len(grants) == 3
    for grant in grants:
        secret = researchers[bytes(grant.recipient_public_key)]
        assert download(grant, secret, new_public) == plaintexts[grant.file.filename]
    listed = client.get("/api/v1/archive-key").json()
    assert listed["rotation"] is None
    assert listed["keys"][1]["state"] == "retired"
    assert listed["keys"][1]["public_key_base64"] == c4gh.public_key_base64(old_public)
    assert listed["keys"][1]["valid_until"] is not None


def test_a_rotation_resumes_from_the_retiring_keys_own_file_after_a_crash(
    archive_key, worker, settings, queued
) -> None:
    """Crash after the database named the new key, before the main key file was replaced
    (the on-commit write never ran): both keys are still found by their own files."""
    old_public = bytes(archive_key.public_key)
    new_key = archive_key_create(
        secret_key_path=Path(settings.ARCHIVE_SECRET_KEY_FILE),
        passphrase=PASSPHRASE,
        replace=True,
    )  # no on-commit callbacks run inside the test's transaction: the "crash"
    main = c4gh.read_secret_key_file(
        Path(settings.ARCHIVE_SECRET_KEY_FILE).read_bytes(), PASSPHRASE
    )
    assert c4gh.public_key_of(main) == old_public  # the main file still holds the old key
    assert c4gh.public_key_of(archive_secret_key(new_key)) == bytes(new_key.public_key)
    assert c4gh.public_key_of(archive_secret_key(archive_key)) == old_public


def test_a_rotation_whose_old_secret_is_lost_stops_with_what_to_do(
    donor_client, archive_key, worker, settings, tmp_path: Path, queued, caplog
) -> None:
    upload(donor_client[0], vcf(tmp_path, "x.vcf", 100), filename="x.vcf")
    archive_key_create(
        secret_key_path=Path(settings.ARCHIVE_SECRET_KEY_FILE),
        passphrase=PASSPHRASE,
        replace=True,
    )
    lost = archive_secret_key_path(bytes(archive_key.public_key))
    lost.unlink()
    Path(settings.ARCHIVE_SECRET_KEY_FILE).unlink()  # the old key is nowhere now

    progress = archive_keys.archive_key_rotate()

    assert progress.remaining == 1 and not progress.done
    assert str(lost) in caplog.text
    out = io.StringIO()
    call_command("archive_key_status", stdout=out)
    assert "Rotation: 0 of 1 files moved" in out.getvalue()
    assert "retiring" in out.getvalue() and "active" in out.getvalue()
