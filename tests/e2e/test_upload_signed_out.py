"""An upload cut by a sign-out elsewhere (issue 16 §10), in Debian's chromium against
Django's live test server: the page says the true next step (sign in again, then choose
the same file) with the link to sign in, keeps the resume entry, and after signing in
again the same file resumes the same upload instead of starting over."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import Route, expect

from genomics.models import GenomicFile
from tests.e2e.conftest import login_cookie
from tests.e2e.test_upload_restart import (  # noqa: F401  (fixtures)
    UPLOADS,
    archive_key,
    choose_and_upload,
    donor_page,
    stored_resume_entries,
    wait_for,
)
from tests.genomics.test_upload_ends import VCF

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("archive_key"),
]


def test_an_upload_cut_by_a_sign_out_says_to_sign_in_and_then_resumes(
    donor_page,  # noqa: F811  (the fixture imported above)
    live_server,
    tmp_path: Path,
) -> None:
    page, log = donor_page
    path = tmp_path / "cohort.vcf"
    path.write_bytes(VCF * 50)

    def sign_out_before_patch(route: Route) -> None:
        if route.request.method == "PATCH":
            Session.objects.all().delete()  # signed out in another tab
        route.continue_()

    page.route(UPLOADS, sign_out_before_patch)
    choose_and_upload(page, path)
    status = page.locator("[data-upload-status]")
    expect(status).to_contain_text("You were signed out")
    expect(status).to_contain_text("Sign in again, then choose the same file")
    expect(status).not_to_contain_text("cannot be resumed")
    link = status.get_by_role("link", name="Sign in again")
    assert link.get_attribute("href") == "/accounts/login/?next=%2Ffiles%2F"
    assert stored_resume_entries(page), "the resume entry was dropped"
    assert "PATCH 401" in log or "PATCH 403" in log
    page.unroute(UPLOADS)

    # Signed in again (as the link leads to), the same file resumes the same upload.
    upload = GenomicFile.objects.get()
    page.context.add_cookies([login_cookie(upload.owner, live_server.url)])
    page.goto(f"{live_server.url}/files/")
    log.clear()
    choose_and_upload(page, path)
    expect(status).to_contain_text("Uploaded.")
    assert log[:2] == ["HEAD", "HEAD 200"], log
    assert GenomicFile.objects.get().pk == upload.pk  # one upload, resumed
    wait_for(page, lambda: not stored_resume_entries(page), "the entry to go on success")
