"""Rate limits count atomically: a burst of concurrent requests gets exactly the allowed
number through, in one process or across processes sharing a Redis cache."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import caches
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.views import APIView

from core.api.throttling import ScopedThrottle


class RegisterLike(APIView):
    throttle_scope = "register"


def burst(throttle_factory, count: int) -> int:
    factory = RequestFactory()

    def one(_: int) -> bool:
        request = Request(factory.post("/x", REMOTE_ADDR="203.0.113.7"))
        return throttle_factory().allow_request(request, RegisterLike())

    with ThreadPoolExecutor(max_workers=16) as pool:
        return sum(pool.map(one, range(count)))


def test_a_concurrent_burst_gets_exactly_the_rate_through(settings) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "register": "7/hour",
        },
    }
    assert burst(ScopedThrottle, 60) == 7
    refused = ScopedThrottle()
    assert not refused.allow_request(
        Request(RequestFactory().post("/x", REMOTE_ADDR="203.0.113.7")), RegisterLike()
    )
    assert 0 < refused.wait() <= 3600


@pytest.mark.integration
def test_processes_sharing_redis_share_the_count(settings, redis_server) -> None:
    original = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
        },
        "other": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
        },
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "register": "9/hour",
        },
    }

    class OtherWorker(ScopedThrottle):
        """A second gunicorn worker: its own connection to the same Redis."""

        cache = caches["other"]

    class FirstWorker(ScopedThrottle):
        cache = caches["default"]

    try:
        through = burst(FirstWorker, 20) + burst(OtherWorker, 20)
    finally:
        settings.CACHES = original  # the private Redis stops before the cache is cleared
    assert through == 9
