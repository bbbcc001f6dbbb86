"""What a locked-out login sees (django-axes calls this)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from core.api.exception_handler import error_body

LOCKOUT_MESSAGE = "Too many failed logins. Try again later."


def lockout_response(
    request: HttpRequest, credentials: dict | None = None, *args: object, **kwargs: object
) -> HttpResponse:
    """429 with the API error shape for API clients, a page for people."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("throttled", LOCKOUT_MESSAGE), status=429)
    return render(request, "registration/locked_out.html", {"message": LOCKOUT_MESSAGE}, status=429)
