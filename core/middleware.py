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
