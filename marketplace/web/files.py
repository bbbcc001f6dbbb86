"""A donor's files: upload with a progress bar (tus-js-client), ingest progress live,
cleaning up (issue 16 §9): cancel an upload, delete a file no listing uses, upload a
failed one again (a new upload: a failed one stays ended, as tus expects); and having a
VCF that is not bgzipped stored bgzipped (issue 17 §1), its progress live."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import DomainError
from genomics.models import GenomicFile
from marketplace.models import Role, User
from marketplace.selectors.files import donor_file_rows
from marketplace.services.files import (
    donor_file_delete,
    donor_file_recompress,
    donor_upload_cancel,
)
from marketplace.web.permissions import role_required

BUSY = {GenomicFile.State.RECEIVING, GenomicFile.State.INGESTING}


def _donor(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _context(request: HttpRequest) -> dict[str, object]:
    rows = donor_file_rows(donor=_donor(request))
    busy = any((r.file.state in BUSY and not r.expired) or r.recompressing for r in rows)
    return {"rows": rows, "busy": busy}


@role_required(Role.DONOR)
def files_page(request: HttpRequest) -> HttpResponse:
    context = _context(request)
    context["upload_expiry_days"] = f"{settings.UPLOAD_EXPIRES_AFTER_S / 86400:g}"
    return render(request, "marketplace/files/index.html", context)


@role_required(Role.DONOR)
def files_table(request: HttpRequest) -> HttpResponse:
    """The table alone, for htmx polling while a file is being received or ingested."""
    return render(request, "marketplace/files/_table.html", _context(request))


@role_required(Role.DONOR)
@require_POST
def file_delete_view(request: HttpRequest, file_id: str) -> HttpResponse:
    try:
        name = donor_file_delete(donor=_donor(request), file_id=file_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Deleted {name} and its stored bytes.")
    return redirect("web:files")


@role_required(Role.DONOR)
@require_POST
def upload_cancel_view(request: HttpRequest, file_id: str) -> HttpResponse:
    try:
        donor_upload_cancel(donor=_donor(request), file_id=file_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Upload cancelled; the bytes received so far are deleted.")
    return redirect("web:files")


@role_required(Role.DONOR)
@require_POST
def file_recompress_view(request: HttpRequest, file_id: str) -> HttpResponse:
    """Store a VCF bgzipped. From htmx (the table's button) the table comes back, the file
    queued and the table polling until the worker is done (or saying why not); without
    JS, the page with a message."""
    try:
        donor_file_recompress(donor=_donor(request), file_id=file_id)
        refusal = ""
    except DomainError as exc:
        refusal = exc.message
    if request.headers.get("HX-Request"):
        context = _context(request)
        context["notice"] = refusal
        return render(request, "marketplace/files/_table.html", context)
    if refusal:
        messages.error(request, refusal)
    else:
        messages.success(request, "The vault is storing it bgzipped; the list shows how it goes.")
    return redirect("web:files")
