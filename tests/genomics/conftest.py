"""Vault fixtures: an archive key on disk (passphrase-protected) and the worker role."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from core import worker_secrets
from genomics import c4gh
from genomics.models import ArchiveKey
from genomics.services.archive_keys import archive_key_create
from marketplace.models import Role

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def worker() -> Iterator[None]:
    """Run the test as the Celery worker, the only process allowed the archive key."""
    previous = worker_secrets._in_worker
    worker_secrets._in_worker = True
    yield
    worker_secrets._in_worker = previous


@pytest.fixture
def archive_key(db: None, settings, tmp_path: Path, monkeypatch) -> ArchiveKey:
    settings.ARCHIVE_SECRET_KEY_FILE = str(tmp_path / "keys" / "archive.sec")
    settings.ARCHIVE_KEY_PASSPHRASE_FILE = str(tmp_path / "keys" / "missing")
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
    return archive_key_create(
        secret_key_path=Path(settings.ARCHIVE_SECRET_KEY_FILE), passphrase=PASSPHRASE
    )


@pytest.fixture
def archive_secret(archive_key: ArchiveKey, settings) -> bytes:
    return c4gh.read_secret_key_file(
        Path(settings.ARCHIVE_SECRET_KEY_FILE).read_bytes(), PASSPHRASE
    )


@pytest.fixture
def donor_client(make_user) -> tuple[Client, object]:
    user = make_user(Role.DONOR)
    client = Client()
    client.force_login(user)
    return client, user


def tus_headers(**extra: str) -> dict[str, Any]:
    return {"HTTP_TUS_RESUMABLE": "1.0.0", **{f"HTTP_{k.upper()}": v for k, v in extra.items()}}


def create_upload(client: Client, length: int, filename: str = "sample.vcf") -> str:
    metadata = "filename " + base64.b64encode(filename.encode()).decode()
    response = client.post(
        "/api/v1/uploads/", **tus_headers(upload_length=str(length), upload_metadata=metadata)
    )
    assert response.status_code == 201, response.content
    return str(response["Location"])


def patch(client: Client, location: str, offset: int, data: bytes):
    return client.generic(
        "PATCH",
        location,
        data,
        content_type="application/offset+octet-stream",
        **tus_headers(upload_offset=str(offset)),
    )


def upload(client: Client, data: bytes, filename: str = "sample.vcf", chunk: int = 1 << 20) -> str:
    location = create_upload(client, len(data), filename)
    for offset in range(0, len(data), chunk):
        response = patch(client, location, offset, data[offset : offset + chunk])
        assert response.status_code == 204, response.content
    return location


def upload_ready(client: Client, data: bytes, filename: str, *, chunk: int = 1 << 20):
    """Upload `data` as `filename` through tus in `chunk`-byte PATCHes, ingest it in this
    process (the worker's task body) and return the stored GenomicFile, asserted READY."""
    from genomics.models import GenomicFile
    from genomics.services.ingest import file_ingest

    upload(client, data, filename=filename, chunk=chunk)
    stored = GenomicFile.objects.get(filename=filename)
    file_ingest(file_id=str(stored.pk))
    stored.refresh_from_db()
    assert stored.state == GenomicFile.State.READY, stored.error
    return stored
