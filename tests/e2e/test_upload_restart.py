"""The upload page (tus-js-client 4.3.1 in Debian's chromium) after an upload ends, against
Django's live test server (lighter than the whole stack: no worker is needed).

- A file the server refuses: the page says why and that choosing a file again starts a new
  upload, and it has forgotten the stored resume entry; choosing the file again does start
  a new upload (no HEAD of the dead one, no 409 retried six times, as before).
- An upload interrupted by a reload and then expired: choosing the file again tries to
  resume, the server answers 410, and tus-js-client drops the entry and uploads anew.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import Browser, Page, Request, Response, Route, expect

from genomics.models import GenomicFile
from marketplace.models import Role
from tests.e2e.conftest import login_cookie
from tests.genomics.conftest import archive_key  # noqa: F401  (the vault's fixture)
from tests.genomics.test_upload_ends import UNSUPPORTED_C4GH, VCF

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("archive_key"),
]
UPLOADS = "**/api/v1/uploads/**"


@pytest.fixture
def donor_page(
    chromium: Browser, live_server, make_user, monkeypatch
) -> Iterator[tuple[Page, list[str]]]:
    """A donor signed in on /files/, and the log of every upload request and answer."""
    # The live server's request threads must not keep connections (see the tuspy tests).
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    context = chromium.new_context()
    context.add_cookies([login_cookie(make_user(Role.DONOR), live_server.url)])  # type: ignore[list-item]
    page = context.new_page()
    page.set_default_timeout(20_000)
    log: list[str] = []

    def on_request(request: Request) -> None:
        if "/api/v1/uploads/" in request.url:
            log.append(request.method)

    def on_response(response: Response) -> None:
        if "/api/v1/uploads/" in response.url:
            log.append(f"{response.request.method} {response.status}")

    page.on("request", on_request)
    page.on("response", on_response)
    page.goto(f"{live_server.url}/files/")
    yield page, log
    context.close()


def stored_resume_entries(page: Page) -> list[str]:
    return list(page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('tus::'))"))


def wait_for(page: Page, condition: Callable[[], bool], what: str) -> None:
    """Poll from Python (wait_for_function would need eval, which the page's CSP forbids),
    letting Playwright's loop run in between so route handlers and events are served."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(100)


def choose_and_upload(page: Page, path: Path) -> None:
    page.get_by_label("File").set_input_files(str(path))
    page.get_by_role("button", name="Upload", exact=True).click()


def test_a_refused_file_is_not_offered_for_resuming(donor_page, tmp_path: Path) -> None:
    page, log = donor_page
    path = tmp_path / "cohort.vcf.c4gh"
    path.write_bytes(UNSUPPORTED_C4GH + bytes(100_000))
    status = page.locator("[data-upload-status]")
    choose_and_upload(page, path)
    expect(status).to_contain_text("version 2 is not supported")
    expect(status).to_contain_text("cannot be resumed: choosing a file again starts a new upload")
    expect(status).not_to_contain_text("to resume")
    wait_for(page, lambda: not stored_resume_entries(page), "the resume entry to go")
    assert log == ["POST", "POST 201", "PATCH", "PATCH 400"]

    log.clear()
    choose_and_upload(page, path)
    expect(status).to_contain_text("version 2 is not supported")
    assert log == ["POST", "POST 201", "PATCH", "PATCH 400"]  # a new upload, no HEAD, no 409
    assert GenomicFile.objects.filter(state=GenomicFile.State.FAILED).count() == 2
    assert not stored_resume_entries(page)


def test_an_expired_upload_is_started_again(donor_page, tmp_path: Path, settings) -> None:
    settings.UPLOAD_EXPIRES_AFTER_S = 3600
    page, log = donor_page
    path = tmp_path / "cohort.vcf"
    path.write_bytes(VCF * 50)
    held: list[Route] = []

    def hold_patch(route: Route) -> None:
        if route.request.method == "PATCH":
            held.append(route)  # never answered: the reload below cuts the upload
        else:
            route.continue_()

    page.route(UPLOADS, hold_patch)
    choose_and_upload(page, path)
    wait_for(page, lambda: bool(held and stored_resume_entries(page)), "a stored upload")
    page.reload()
    page.unroute(UPLOADS)
    first = GenomicFile.objects.get()
    GenomicFile.objects.filter(pk=first.pk).update(updated_at=timezone.now() - timedelta(hours=2))

    log.clear()
    choose_and_upload(page, path)
    expect(page.locator("[data-upload-status]")).to_contain_text("Uploaded.")
    assert log[:4] == ["HEAD", "HEAD 410", "POST", "POST 201"]
    assert "PATCH 409" not in log
    second = GenomicFile.objects.exclude(pk=first.pk).get()
    assert second.state == GenomicFile.State.INGESTING
    assert second.upload_offset == path.stat().st_size
    assert not stored_resume_entries(page)  # removed on success, as before
