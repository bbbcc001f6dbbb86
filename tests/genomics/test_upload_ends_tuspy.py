"""A standard tus client (tuspy, the tus project's Python client) against a live server:
after each end of an upload (refused, failed at ingest, expired, terminated) its stored URL
answers 404 or 410, which is the signal to forget it and start a new upload; resuming as
usual then works. Before, a refused upload answered HEAD 200 at offset 0 and PATCH 409
(tuspy gave up with an offset conflict), and a file that failed ingest read as uploaded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.db import connections
from django.utils import timezone
from rest_framework.authtoken.models import Token
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.fingerprint.fingerprint import Fingerprint
from tusclient.storage.filestorage import FileStorage
from tusclient.uploader import Uploader

from genomics.models import GenomicFile
from genomics.services.ingest import file_ingest
from marketplace.models import Role
from tests.genomics.test_upload_ends import UNSUPPORTED_C4GH, VCF

pytestmark = pytest.mark.django_db(transaction=True)
CHUNK = 64 * 1024


@pytest.fixture
def tus(live_server, archive_key, make_user, monkeypatch) -> TusClient:
    # The live server's request threads would otherwise keep their connections open (the
    # settings keep them 60 s), and the test database could not be dropped at the end.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    donor = make_user(Role.DONOR)
    token = Token.objects.create(user=donor)
    return TusClient(
        f"{live_server.url}/api/v1/uploads/", headers={"Authorization": f"Token {token.key}"}
    )


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[FileStorage]:
    urls = FileStorage(str(tmp_path / "tus-urls.json"))
    yield urls
    urls.close()


def resuming(tus: TusClient, storage: FileStorage, path: Path) -> Uploader:
    """tuspy's resume: the constructor HEADs the stored URL for its offset."""
    return tus.uploader(
        file_path=str(path),
        chunk_size=CHUNK,
        store_url=True,
        url_storage=storage,
        metadata={"filename": path.name},
    )


def resume_or_start_over(tus: TusClient, storage: FileStorage, path: Path) -> Uploader:
    """What a tuspy user does: resume; if the upload is gone (404/410), start a new one."""
    try:
        return resuming(tus, storage, path)
    except TusCommunicationError as exc:
        if exc.status_code not in (404, 410):
            raise
        with path.open("rb") as handle:
            storage.remove_item(Fingerprint().get_fingerprint(handle))
        return resuming(tus, storage, path)


def stored_url(storage: FileStorage, path: Path) -> str | None:
    with path.open("rb") as handle:
        return storage.get_item(Fingerprint().get_fingerprint(handle))


def row(url: str) -> GenomicFile:
    return GenomicFile.objects.get(pk=urlsplit(url).path.rstrip("/").rsplit("/", 1)[1])


def ends_then_restarts(
    tus: TusClient,
    storage: FileStorage,
    path: Path,
    end: Callable[[str], None],
    status: int,
) -> Uploader:
    """Upload part of `path`, end the upload with `end(url)`, check that resuming answers
    `status`, then start over and return the new uploader."""
    first = resuming(tus, storage, path)
    first.upload(stop_at=2 * CHUNK)
    assert first.url is not None and first.offset == 2 * CHUNK
    end(first.url)
    with pytest.raises(TusCommunicationError) as gone:
        resuming(tus, storage, path)
    assert gone.value.status_code == status
    again = resume_or_start_over(tus, storage, path)
    assert again.url is None or again.url != first.url
    again.upload()
    assert again.url is not None and again.url != first.url
    assert stored_url(storage, path) == again.url
    return again


def test_tuspy_starts_over_after_a_refused_upload(tus, storage, tmp_path: Path) -> None:
    path = tmp_path / "sample.vcf.c4gh"
    path.write_bytes(UNSUPPORTED_C4GH + bytes(3 * CHUNK))
    first = resuming(tus, storage, path)
    with pytest.raises(TusUploadFailed) as refused:
        first.upload()
    assert refused.value.status_code == 400
    assert b"version 2 is not supported" in refused.value.response_content
    with pytest.raises(TusCommunicationError) as gone:
        resuming(tus, storage, path)  # was: HEAD 200 at offset 0, then PATCH 409 forever
    assert gone.value.status_code == 410
    again = resume_or_start_over(tus, storage, path)
    with pytest.raises(TusUploadFailed) as refused_again:
        again.upload()  # a new upload, refused for the file's own reason
    assert refused_again.value.status_code == 400
    assert again.url != first.url
    assert GenomicFile.objects.filter(state=GenomicFile.State.FAILED).count() == 2


def test_tuspy_starts_over_after_an_upload_expired(tus, storage, tmp_path: Path, settings) -> None:
    settings.UPLOAD_EXPIRES_AFTER_S = 3600
    path = tmp_path / "sample.vcf"
    path.write_bytes(VCF * 20)

    def expire(url: str) -> None:
        GenomicFile.objects.filter(pk=row(url).pk).update(
            updated_at=timezone.now() - timedelta(hours=2)
        )

    again = ends_then_restarts(tus, storage, path, expire, 410)
    done = row(again.url or "")
    assert done.state == GenomicFile.State.INGESTING
    assert done.upload_offset == done.upload_length == path.stat().st_size


def test_tuspy_starts_over_after_an_upload_was_terminated(tus, storage, tmp_path: Path) -> None:
    path = tmp_path / "sample.vcf"
    path.write_bytes(VCF * 20)

    def terminate(url: str) -> None:
        headers = tus.headers | {"Tus-Resumable": "1.0.0"}
        response = requests.delete(url, headers=headers, timeout=10)
        assert response.status_code == 204

    again = ends_then_restarts(tus, storage, path, terminate, 404)
    assert GenomicFile.objects.get().pk == row(again.url or "").pk


def test_tuspy_sees_a_failed_ingest_as_gone_not_done(tus, storage, tmp_path: Path, worker) -> None:
    path = tmp_path / "sample.vcf"
    path.write_bytes(b"\x00\x01 not a genomic format \xff" * 5000)
    first = resuming(tus, storage, path)
    first.upload()
    file_ingest(file_id=str(row(first.url or "").pk))
    assert row(first.url or "").state == GenomicFile.State.FAILED
    # Before: HEAD 200 with offset == length, and tuspy took the file as uploaded.
    with pytest.raises(TusCommunicationError) as gone:
        resuming(tus, storage, path)
    assert gone.value.status_code == 410
    assert resume_or_start_over(tus, storage, path).url is None  # a new upload will start
