"""A donor's files: upload with a progress bar (tus-js-client), then ingest progress live."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from genomics.models import GenomicFile
from genomics.selectors.files import file_list
from marketplace.models import Role
from marketplace.web.permissions import role_required

BUSY = {GenomicFile.State.RECEIVING, GenomicFile.State.INGESTING}


def _context(request: HttpRequest) -> dict[str, object]:
    files = list(file_list(owner=request.user)[:200])  # type: ignore[arg-type]
    return {"files": files, "busy": any(f.state in BUSY for f in files)}


@role_required(Role.DONOR)
def files_page(request: HttpRequest) -> HttpResponse:
    context = _context(request)
    context["upload_expiry_days"] = f"{settings.UPLOAD_EXPIRES_AFTER_S / 86400:g}"
    return render(request, "marketplace/files/index.html", context)


@role_required(Role.DONOR)
def files_table(request: HttpRequest) -> HttpResponse:
    """The table alone, for htmx polling while a file is being received or ingested."""
    return render(request, "marketplace/files/_table.html", _context(request))
