"""The catalogue's result lists come from the shared cache, are out of date the moment a
listing changes, and a cache that is down only makes the page build them itself."""

from __future__ import annotations

from typing import cast

import pytest
import redis
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from marketplace.models import Dataset, Role, User
from marketplace.services.datasets import dataset_create, dataset_withdraw
from marketplace.web import results_cache
from tests.factories import UserFactory, ready_file

pytestmark = pytest.mark.django_db


def listed(donor: User, title: str) -> Dataset:
    return dataset_create(
        donor=donor,
        title=title,
        description="",
        files=[ready_file(donor).pk],
        duo_codes=["DUO:0000042"],
        price=str(10**18),
        access_days=30,
        review="auto",
    )


def results_queries(path: str) -> tuple[str, int]:
    """The page's result list and how many queries touched the datasets table for it."""
    with CaptureQueriesContext(connection) as queries:
        html = Client().get(path).content.decode()
    start = html.index('<section id="results"')
    results = html[start : html.index("</section>", start)]
    return results, sum("marketplace_dataset" in q["sql"] for q in queries.captured_queries)


def test_a_second_view_is_served_from_the_cache(settings) -> None:
    settings.CATALOGUE_CACHE_S = 30
    listed(cast(User, UserFactory(role=Role.DONOR, payout_wallet=True)), "Asthma panel")
    first, built = results_queries("/datasets/?q=asthma")
    again, cached = results_queries("/datasets/?q=asthma")
    assert "Asthma panel" in first and again == first
    assert built > 0 and cached == 0
    other, _ = results_queries("/datasets/?q=glioma")  # another query, its own entry
    assert "No dataset matches" in other


def test_hits_and_misses_are_counted(settings) -> None:
    """bench/load.py reports the hit rate from these counts."""
    settings.CATALOGUE_CACHE_S = 30
    before = results_cache.COUNTS.snapshot()
    results_queries("/datasets/?q=asthma")
    results_queries("/datasets/?q=asthma")
    results_queries("/datasets/?q=glioma")
    after = results_cache.COUNTS.snapshot()
    assert after["hits"] - before["hits"] == 1
    assert after["misses"] - before["misses"] == 2
    settings.CATALOGUE_CACHE_S = 0  # switched off: built every time, counted as neither
    results_queries("/datasets/?q=asthma")
    assert results_cache.COUNTS.snapshot() == after


def test_a_listing_change_shows_at_once(settings) -> None:
    settings.CATALOGUE_CACHE_S = 3600
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    listed(donor, "Asthma panel")
    assert "Trio genomes" not in results_queries("/datasets/")[0]
    trio = listed(donor, "Trio genomes")
    assert "Trio genomes" in results_queries("/datasets/")[0]
    dataset_withdraw(actor=donor, dataset=trio)
    assert "Trio genomes" not in results_queries("/datasets/")[0]


def test_a_cache_that_is_down_is_passed_by(monkeypatch) -> None:
    down = RedisCache("redis://127.0.0.1:9/0", {})  # nothing listens there
    monkeypatch.setattr(results_cache, "cache", down)
    listed(cast(User, UserFactory(role=Role.DONOR, payout_wallet=True)), "Asthma panel")
    html, built = results_queries("/datasets/?q=asthma")
    assert "Asthma panel" in html and built > 0


class FailingCache:
    """A cache backend whose every call raises `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def _raise(self, *args: object, **kwargs: object) -> None:
        raise self.error

    get = add = set = incr = _raise


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
    ],
    ids=repr,
)
def test_a_cache_server_that_cannot_be_reached_is_passed_by(monkeypatch, settings, error) -> None:
    settings.CATALOGUE_CACHE_S = 30
    monkeypatch.setattr(results_cache, "cache", FailingCache(error))
    assert results_cache.cached_results({"q": "asthma"}, build=lambda: "<ol></ol>") == "<ol></ol>"
    results_cache.catalogue_changed()  # no raise: entries expire on their own


@pytest.mark.parametrize(
    "error",
    [
        TypeError("unhashable type: 'dict'"),
        AttributeError("'NoneType' object has no attribute 'decode'"),
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
    ],
    ids=repr,
)
def test_a_bug_in_the_cache_path_is_raised_not_hidden(monkeypatch, settings, error) -> None:
    """Only an unreachable server is passed by: a bug, or a server that answers with an
    error, must fail loudly."""
    settings.CATALOGUE_CACHE_S = 30
    monkeypatch.setattr(results_cache, "cache", FailingCache(error))
    with pytest.raises(type(error)):
        results_cache.cached_results({"q": "asthma"}, build=lambda: "<ol></ol>")
    with pytest.raises(type(error)):
        results_cache.catalogue_changed()
