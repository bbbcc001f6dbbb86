"""Uploads cut off at random offsets: the connection drops in the middle of a PATCH body
(the WSGI input fails, as gunicorn's does when a client goes away), over and over; each
upload then resumes from the offset the server reports and ends with exactly the donor's
bytes in the vault, or is terminated and leaves nothing behind.

`make test` runs a few dozen examples; `make fuzz` runs a hundred (FUZZ_EXAMPLES)."""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from crypt4gh import lib as reference
from django.core.files.storage import default_storage
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genomics.models import GenomicFile, PayloadPart, UploadState
from tests.genomics.conftest import create_upload, tus_headers

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
DATA = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + b"".join(
    b"1\t%d\t.\tC\tT\t.\tPASS\t.\n" % (i + 1) for i in range(9000)
)


class CutStream(io.RawIOBase):
    """A request body that breaks after `cut` bytes, like a dropped connection."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut, self.pos = data, cut, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.pos >= self.cut:
            raise OSError("client disconnected")
        end = self.cut if size is None or size < 0 else min(self.cut, self.pos + size)
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def readline(self, size: int = -1) -> bytes:  # type: ignore[override]
        return self.read(size)


def cut_patch(client: Client, location: str, offset: int, body: bytes, cut: int) -> Any:
    """A PATCH whose body stops after `cut` bytes. The server's own answer comes back: an
    exception that escapes the view is turned into a 500 and logged, as in production,
    instead of being raised into the test."""
    client.raise_request_exception = False
    try:
        return client.request(
            REQUEST_METHOD="PATCH",
            PATH_INFO=urlsplit(location).path,
            CONTENT_TYPE="application/offset+octet-stream",
            CONTENT_LENGTH=str(len(body)),
            **{"wsgi.input": CutStream(body, cut)},
            **tus_headers(upload_offset=str(offset)),
        )
    finally:
        client.raise_request_exception = True


def server_errors(records: list[logging.LogRecord]) -> list[str]:
    """What the server logged as an error or with a traceback."""
    return [
        f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.ERROR or r.exc_info
    ]


def offset_of(client: Client, location: str) -> int:
    head = client.head(location, **tus_headers())
    assert head.status_code == 200, head.content
    return int(head["Upload-Offset"])


def vault_plaintext(stored: GenomicFile, secret: bytes) -> bytes:
    payload = b""
    for part in PayloadPart.objects.filter(file=stored).order_by("payload_offset"):
        with default_storage.open(part.storage_name) as handle:
            payload += handle.read()
    out = io.BytesIO()
    reference.decrypt([(0, secret, None)], io.BytesIO(bytes(stored.header or b"") + payload), out)
    return out.getvalue()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cuts=st.lists(st.floats(min_value=0.0, max_value=0.999), min_size=1, max_size=4),
    give_up=st.booleans(),
)
def test_cut_uploads_resume_to_the_exact_bytes_or_leave_nothing(
    donor_client,
    archive_key,
    archive_secret,
    settings,
    django_capture_on_commit_callbacks,
    caplog: pytest.LogCaptureFixture,
    cuts: list[float],
    give_up: bool,
) -> None:
    client, _ = donor_client
    root = Path(settings.MEDIA_ROOT)
    GenomicFile.objects.all().delete()  # each example starts from an empty vault
    shutil.rmtree(root, ignore_errors=True)
    location = create_upload(client, len(DATA), "cut.vcf")
    for fraction in cuts:
        offset = offset_of(client, location)
        rest = DATA[offset:]
        caplog.clear()
        response = cut_patch(client, location, offset, rest, int(len(rest) * fraction))
        # The body always stops short of its Content-Length, so the server meets the broken
        # connection: a clean answer in the API's shape, and nothing logged as a failure.
        assert response.status_code == 400, (response.status_code, response.content[:300])
        assert response.json()["error"]["code"] == "connection_lost"
        assert response["Tus-Resumable"] == "1.0.0"
        assert server_errors(caplog.records) == []
        after = offset_of(client, location)
        assert offset <= after <= len(DATA)
    if give_up:
        with django_capture_on_commit_callbacks(execute=True):
            assert client.delete(location, **tus_headers()).status_code == 204
        assert not GenomicFile.objects.exists() and not UploadState.objects.exists()
        assert not PayloadPart.objects.exists()
        assert not [p for p in root.rglob("*") if p.is_file()]
        return
    offset = offset_of(client, location)
    final = client.generic(
        "PATCH",
        location,
        DATA[offset:],
        content_type="application/offset+octet-stream",
        **tus_headers(upload_offset=str(offset)),
    )
    assert final.status_code == 204, final.content
    stored = GenomicFile.objects.get()
    assert vault_plaintext(stored, archive_secret) == DATA
