"""The vault on S3-compatible storage (django-storages), against a local S3 server (moto)
on 127.0.0.1: upload, ingest, grant and a ranged download, then termination cleans up."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import boto3
import pytest
from crypt4gh import lib as reference
from django.test import RequestFactory
from moto.server import ThreadedMotoServer

from genomics import c4gh
from genomics.downloads import grant_download_response
from genomics.models import GenomicFile
from genomics.services.grants import grant_create
from genomics.services.ingest import file_ingest
from tests.genomics import samples
from tests.genomics.conftest import create_upload, patch, tus_headers, upload
from tests.support.processes import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def s3(settings, monkeypatch) -> Iterator[object]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    # moto keeps buckets in process memory across servers: a fresh bucket per test.
    bucket = f"vault-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "default_acl": "private"},
        },
    }
    yield client, bucket
    server.stop()


def objects(s3) -> list[str]:
    client, bucket = s3
    return [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_the_whole_vault_path_on_s3(s3, donor_client, archive_key, worker, tmp_path) -> None:
    client, _ = donor_client
    data = samples.write_variants(tmp_path / "s3.vcf", "w", records=20000).read_bytes()
    upload(client, data, filename="s3.vcf", chunk=300_000)
    stored = GenomicFile.objects.get()
    assert len(objects(s3)) == stored.parts.count() > 1
    client_s3, bucket = s3
    assert all(
        b"DONOR_SECRET" not in client_s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for key in objects(s3)
    )
    ingested = file_ingest(file_id=str(stored.pk))
    assert ingested is not None
    assert ingested.state == GenomicFile.State.READY, ingested.error
    stored = ingested
    secret, public = c4gh.generate_keypair()
    grant = grant_create(file=stored, recipient_public_key=public)
    request = RequestFactory().get("/d", HTTP_RANGE="bytes=100-")
    response = grant_download_response(request, grant=grant, filename=stored.filename)
    tail = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    whole = bytes(grant.header)[:100]
    request = RequestFactory().get("/d", HTTP_RANGE="bytes=0-99")
    head = b"".join(
        grant_download_response(
            request,
            grant=grant,  # type: ignore[attr-defined]
            filename="x",
        ).streaming_content
    )
    out = io.BytesIO()
    reference.decrypt([(0, secret, None)], io.BytesIO(head + tail), out)
    assert out.getvalue() == data and head == whole


def test_termination_removes_the_objects(
    s3, donor_client, archive_key, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    big = bytes(9 * 1024 * 1024)
    location = create_upload(client, len(big) + 10)
    assert patch(client, location, 0, big).status_code == 204
    assert objects(s3)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(location, **tus_headers()).status_code == 204
    assert objects(s3) == []
