"""What a locked-out login sees (django-axes calls this)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.api.exception_handler import json_error_response

LOCKOUT_MESSAGE = "Too many failed logins. Try again later."


def lockout_response(
    request: HttpRequest, credentials: dict | None = None, *args: object, **kwargs: object
) -> HttpResponse:
    """429 with the API error shape for API clients, a page for people."""
    if (answer := json_error_response(request, 429, "throttled", LOCKOUT_MESSAGE)) is not None:
        return answer
    return render(request, "registration/locked_out.html", {"message": LOCKOUT_MESSAGE}, status=429)
