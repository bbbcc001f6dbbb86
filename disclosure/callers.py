"""The `Caller` of an HTTP request: its user and its client's network prefix."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from disclosure.types import Caller


def client_address(request: HttpRequest) -> str:
    """The client's IP address: REMOTE_ADDR, or with PROXY_COUNT trusted proxies in front
    the address the outermost of them saw (X-Forwarded-For, counted from the right; the
    left part is the client's to forge)."""
    proxies = settings.AXES_IPWARE_PROXY_COUNT or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return str(request.META.get("REMOTE_ADDR", ""))


def caller_for_request(request: HttpRequest) -> Caller:
    """The request's `Caller` (authenticated user id or None, and network prefix).
    Raises ValueError when the client address is not an IP address."""
    user = getattr(request, "user", None)
    user_id = user.pk if user is not None and user.is_authenticated else None
    return Caller.for_address(user_id=user_id, address=client_address(request))
