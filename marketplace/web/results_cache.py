"""The catalogue's result list, rendered once per query and kept in the shared cache.

Most catalogue views are the same few pages (the first page, common words), and building
one costs two queries and a template (tens of milliseconds of CPU); under load that CPU
is what pushes the slowest answers up. Only the results fragment is kept: it is the same
for every visitor, while the page around it holds the visitor's name and CSRF token.

A listing change (a saved or deleted dataset, its files) moves the cache's generation on,
so a listing shows at once; what signals do not see (a donor's new display name, an
update() on a queryset) shows within CATALOGUE_CACHE_S. A cache that fails (Redis down)
is passed by: the page is built as if nothing were cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

GENERATION = "catalogue:generation"


class Counts:
    """How many result lists this process took from the cache (hits) and built because the
    cache had none (misses), since it started; lists built because the cache is switched
    off or unreachable are neither. Kept in memory (a lock and two integers: no cache
    round trip), so each server process has its own; bench/load.py reads them as its
    gunicorn workers exit, to report the hit rate under load.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def count(self, *, hit: bool) -> None:
        with self._lock:  # gthread workers serve several requests at once
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def snapshot(self) -> dict[str, int]:
        """{"hits": int, "misses": int}."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses}


COUNTS = Counts()


def cache_down() -> tuple[type[BaseException], ...]:
    """What the cache backend raises when its server cannot be reached, and nothing else: a
    bug in this path (a bad key, a template error in `build`) must still raise.

    OSError covers socket failures (refused, reset, timed out); redis-py raises its own
    `ConnectionError` and `TimeoutError`, which are not OSErrors. Those are taken from
    `sys.modules` rather than imported: an `except cache_down():` clause is evaluated only
    once something was raised, and a redis error can only be raised once Django's Redis
    backend has imported redis; a process on another cache backend never imports redis
    (importing it needs `async_timeout` on Python < 3.11.3).
    """
    redis_errors = sys.modules.get("redis.exceptions")
    if redis_errors is None:
        return (OSError,)
    return (OSError, redis_errors.ConnectionError, redis_errors.TimeoutError)


def _generation() -> int:
    value = cache.get(GENERATION)
    if value is None:
        cache.add(GENERATION, time.time_ns(), timeout=None)
        value = cache.get(GENERATION)
    return int(value)


def catalogue_changed() -> None:
    """Every cached result list is out of date from now on."""
    try:
        cache.incr(GENERATION)
    except ValueError:  # no generation yet (or evicted): a new, larger one
        cache.add(GENERATION, time.time_ns(), timeout=None)
    except cache_down():  # a broken cache is passed by, never raised to a donor
        logger.warning("catalogue cache unreachable: its entries expire on their own")


def cached_results(query: dict[str, str], build: Callable[[], str]) -> str:
    """The rendered results for `query`, from the cache or built (and kept) now."""
    if settings.CATALOGUE_CACHE_S <= 0:
        return build()
    digest = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:32]
    try:
        key = f"catalogue:results:{_generation()}:{digest}"
        html = cache.get(key)
    except cache_down():
        logger.warning("catalogue cache unreachable: building the results")
        return build()
    COUNTS.count(hit=html is not None)
    if html is None:
        html = build()
        try:
            cache.set(key, html, timeout=settings.CATALOGUE_CACHE_S)
        except cache_down():
            logger.warning("catalogue cache unreachable: results not kept")
    return str(html)
