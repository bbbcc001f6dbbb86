"""Response headers that keep private data out of shared caches."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


class PrivateCacheControlMiddleware:
    """Mark every response to a signed-in user (or with a token) `no-store`.

    Private pages and API answers name people, keys and payments; no proxy or browser
    cache may keep them (RELIABILITY.md item 7). Responses that already chose a policy
    (static files) are left alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        authenticated = getattr(request, "user", None) is not None and request.user.is_authenticated
        if (authenticated or "HTTP_AUTHORIZATION" in request.META) and not response.has_header(
            "Cache-Control"
        ):
            patch_cache_control(response, no_store=True, private=True)
        return response


class DomainErrorPageMiddleware:
    """A domain error escaping a web page becomes that page's plain-words answer: 404 for
    what the visitor may not see, 403 for what their role may not do, and the message
    itself for a refused action. API views answer through DRF's handler before this."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.shortcuts import render

        from core.api.exception_handler import json_error_shape
        from core.errors import DomainError

        if not isinstance(exception, DomainError) or json_error_shape(request.path) is not None:
            return None
        template = {404: "errors/404.html", 403: "errors/403.html"}.get(
            exception.status, "errors/refused.html"
        )
        return render(request, template, {"message": exception.message}, status=exception.status)
