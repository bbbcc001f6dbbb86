"""Attachments on a request (issue 19 §3): PDF only, size-checked, stored encrypted like
the data (no plaintext in storage), opened only by the committee through a one-time
header from the worker, every opening audited; archive key rotations carry them along."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from core import worker_secrets
from genomics.models import GenomicFile, Grant
from genomics.services.archive_keys import archive_key_create, archive_key_rotate_batch
from marketplace import tasks
from marketplace.models import AccessRequest, AuditEntry, RequestAttachment, Role, User
from marketplace.services.attachments import attachment_header_for
from tests.factories import UserFactory, committee_request
from tests.genomics.conftest import PASSPHRASE, archive_key  # noqa: F401
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db
MARKER = b"ETHICS-APPROVAL-REF-2026-0042"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\n" + MARKER + b"\n" + b"x" * 70_000 + b"\n%%EOF\n"


@contextmanager
def _as_worker() -> Iterator[None]:
    previous = worker_secrets._in_worker
    worker_secrets._in_worker = True
    try:
        yield
    finally:
        worker_secrets._in_worker = previous


@pytest.fixture(autouse=True)
def _worker_runs_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web enqueues; the worker (with the archive key) runs the task, the web never."""

    def run(task: Any, *args: object, countdown: float = 0) -> bool:
        assert task is tasks.attachment_header
        with _as_worker():
            task(*args)
        return True

    monkeypatch.setattr("marketplace.services.attachments.enqueue", run)


@pytest.fixture
def waiting(archive_key) -> AccessRequest:  # noqa: F811
    return committee_request()


def _attach(request: AccessRequest, name: str = "ethics.pdf", data: bytes = PDF):
    return logged_in(request.researcher).post(
        f"/requests/{request.pk}/attachments",
        {"document": SimpleUploadedFile(name, data, content_type="application/pdf")},
    )


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_attachment_is_stored_encrypted_and_opened_only_by_the_committee(
    waiting: AccessRequest, settings
) -> None:
    assert _attach(waiting).status_code == 302
    attachment = RequestAttachment.objects.get(request=waiting)
    stored = attachment.file
    assert stored.format == "pdf" and stored.plaintext_size == len(PDF)
    # No byte of the plaintext rests in storage.
    files = [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    assert files and not any(MARKER in p.read_bytes() for p in files)
    attach = AuditEntry.objects.get(action="request.attach", object_id=str(waiting.pk))
    assert attach.data["sha256"] == stored.plaintext_sha256

    reviewer = cast(User, UserFactory(role=Role.REVIEWER))
    url = f"/api/v1/access-requests/{waiting.pk}/attachments/{attachment.pk}"
    opened = _api(reviewer).get(url)
    assert opened.status_code == 200 and opened.content == PDF
    assert opened["Content-Disposition"].startswith("attachment")
    assert opened["Content-Security-Policy"] == "sandbox"
    assert not Grant.objects.filter(file=stored).exists()  # the one-time header is gone
    assert AuditEntry.objects.filter(
        action="request.attachment_open", actor_id=str(reviewer.pk)
    ).exists()
    page = logged_in(reviewer).get(f"/requests/{waiting.pk}/attachments/{attachment.pk}")
    assert page.status_code == 200 and page.content == PDF

    # The donor, another researcher and the researcher who attached it cannot open it.
    stranger = cast(User, UserFactory(role=Role.RESEARCHER))
    for user in (waiting.dataset.donor, stranger, waiting.researcher):
        assert _api(user).get(url).status_code == 404, user.role
    listed = _api(waiting.researcher).get(f"/api/v1/access-requests/{waiting.pk}/attachments")
    assert [a["filename"] for a in listed.json()] == ["ethics.pdf"]
    assert (
        _api(waiting.dataset.donor).get(f"/api/v1/access-requests/{waiting.pk}/attachments").json()
        == []
    )


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("letter.pdf", b"GIF89a not a pdf", "is not a PDF"),
        ("letter.pdf", PDF[: len(PDF) // 2], "is not a PDF"),  # cut short: no %%EOF
        ("letter.exe", b"MZ\x90\x00", "is not a PDF"),
    ],
)
def test_only_whole_pdfs_are_taken(waiting: AccessRequest, name: str, data: bytes, says: str):
    refused = _attach(waiting, name, data)
    assert refused.status_code == 400 and says in refused.content.decode()
    assert not GenomicFile.objects.filter(format="pdf").exists()


def test_size_and_state_limits(waiting: AccessRequest, settings) -> None:
    settings.ATTACHMENT_MAX_BYTES = 1024
    refused = _attach(waiting)
    assert refused.status_code == 400 and "At most" in refused.content.decode()
    settings.ATTACHMENT_MAX_BYTES = 10 * 2**20
    AccessRequest.objects.filter(pk=waiting.pk).update(state="approved")
    late = _api(waiting.researcher).post(
        f"/api/v1/access-requests/{waiting.pk}/attachments",
        {"document": SimpleUploadedFile("a.pdf", PDF)},
        format="multipart",
    )
    assert late.status_code == 409
    assert not RequestAttachment.objects.exists()


def test_the_worker_makes_one_time_headers_for_attachments_only(waiting: AccessRequest) -> None:
    donor_file = waiting.dataset.files.get()
    with _as_worker():
        assert attachment_header_for(file_id=donor_file.pk, public_key_hex="11" * 32) is None
    _attach(waiting)
    attachment = RequestAttachment.objects.get()
    # An attachment row pointed at a file that is listed in a dataset is refused too.
    waiting.dataset.files.add(attachment.file)
    with _as_worker():
        assert attachment_header_for(file_id=attachment.file_id, public_key_hex="11" * 32) is None


def test_an_archive_key_rotation_carries_attachments_along(
    waiting: AccessRequest, settings, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    _attach(waiting)
    attachment = RequestAttachment.objects.get()
    monkeypatch.setattr("genomics.services.archive_keys._enqueue_rotation", lambda: None)
    with django_capture_on_commit_callbacks(execute=True):
        new = archive_key_create(
            secret_key_path=Path(settings.ARCHIVE_SECRET_KEY_FILE),
            passphrase=PASSPHRASE,
            replace=True,
        )
    with _as_worker():
        archive_key_rotate_batch()
    attachment.file.refresh_from_db()
    assert attachment.file.archive_key_id == new.pk
    reviewer = cast(User, UserFactory(role=Role.REVIEWER))
    opened = _api(reviewer).get(f"/api/v1/access-requests/{waiting.pk}/attachments/{attachment.pk}")
    assert opened.status_code == 200 and opened.content == PDF


def test_the_committee_box_names_the_attachments_by_file_name(waiting: AccessRequest) -> None:
    _attach(waiting)
    reviewer = cast(User, UserFactory(role=Role.REVIEWER))
    page = logged_in(reviewer).get(f"/requests/{waiting.pk}/").content.decode()
    box = page.split("data-agreement>", 1)[1].split("</div>", 1)[0]
    assert "ethics.pdf" in box and "of request" not in box  # not the model's default text
