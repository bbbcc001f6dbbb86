"""Rate limits that hold across processes and under concurrency.

DRF's own throttles keep a list of timestamps per client in the cache and write it back
after reading it: two requests at once (or two gunicorn workers) both read the same list
and both pass, so a burst gets through. These count in a fixed window with the cache's
atomic increment instead (Redis INCR when CACHE_URL points at Redis, which production
should; a lock in the local-memory cache). They also read their rates when they run:
DRF copies DEFAULT_THROTTLE_RATES into the class at import, so a rate changed in settings
(an operator's environment, a test) would be ignored until restart.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import (
    AnonRateThrottle,
    ScopedRateThrottle,
    SimpleRateThrottle,
    UserRateThrottle,
)

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from rest_framework.views import APIView


class _AtomicWindow(SimpleRateThrottle):
    window_end: float = 0.0
    num_requests: int
    duration: int

    def get_rate(self) -> str | None:
        rates = cast(dict[str, str | None], api_settings.DEFAULT_THROTTLE_RATES)
        self.THROTTLE_RATES = rates
        return rates.get(cast(str, self.scope)) if getattr(self, "scope", None) else None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        window = int(time.time() // self.duration)
        counter = f"{key}:w{window}"
        self.window_end = (window + 1) * self.duration
        self.cache.add(counter, 0, self.duration + 1)
        try:
            count = self.cache.incr(counter)
        except ValueError:  # the window expired between add and incr: a fresh one
            self.cache.add(counter, 1, self.duration + 1)
            count = 1
        return count <= self.num_requests

    def wait(self) -> float:
        return max(0.0, self.window_end - time.time())


class AnonThrottle(_AtomicWindow, AnonRateThrottle):
    """Per client address, for anonymous requests."""


class UserThrottle(_AtomicWindow, UserRateThrottle):
    """Per user, for authenticated requests."""


class ScopedThrottle(_AtomicWindow, ScopedRateThrottle):
    """Per view scope (`throttle_scope`): registration, SIWE, uploads."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        # ScopedRateThrottle picks the scope from the view first; then the atomic window.
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        num_requests, duration = self.parse_rate(self.rate)
        if num_requests is None or duration is None:
            return True
        self.num_requests, self.duration = num_requests, duration
        return _AtomicWindow.allow_request(self, request, view)
