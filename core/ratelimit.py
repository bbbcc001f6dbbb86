"""Fixed-window counters for pages outside the API's throttles (DRF throttles only API
views). Same rule as core.api.throttling: the cache's atomic increment (Redis INCR when
CACHE_URL is Redis), so parallel requests cannot all pass on one stale count."""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """ "5/hour" -> (5, 3600). Raises ValueError for a malformed rate."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


def rate_limit_hit(*, scope: str, key: str, rate: str) -> bool:
    """Count one event for (`scope`, `key`) and answer whether it is within `rate`
    ("N/second|minute|hour|day"). `key` is hashed: an email address or client address
    never becomes a cache key in clear."""
    allowed, period = parse_rate(rate)
    window = int(time.time() // period)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    counter = f"ratelimit:{scope}:{digest}:w{window}"
    cache.add(counter, 0, period + 1)
    try:
        count = cache.incr(counter)
    except ValueError:  # the window expired between add and incr
        cache.add(counter, 1, period + 1)
        count = 1
    return count <= allowed
