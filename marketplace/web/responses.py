"""Responses the web pages share."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.http import content_disposition_header


def pdf_response(filename: str, data: bytes) -> HttpResponse:
    """A PDF as a download: never rendered by our origin (a crafted PDF could run script in
    a browser's viewer), never sniffed as something else, never cached."""
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(True, filename) or "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    response["Cache-Control"] = "no-store"
    return response
