"""The catalogue's result lists come from the shared cache, are out of date the moment a
listing changes, and a cache that is down only makes the page build them itself."""

from __future__ import annotations

from typing import cast

import pytest
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
    results = html[html.index('<section id="results"') : html.index("</section>")]
    return results, sum("marketplace_dataset" in q["sql"] for q in queries.captured_queries)


def test_a_second_view_is_served_from_the_cache(settings) -> None:
    settings.CATALOGUE_CACHE_S = 30
    listed(cast(User, UserFactory(role=Role.DONOR)), "Asthma panel")
    first, built = results_queries("/datasets/?q=asthma")
    again, cached = results_queries("/datasets/?q=asthma")
    assert "Asthma panel" in first and again == first
    assert built > 0 and cached == 0
    other, _ = results_queries("/datasets/?q=glioma")  # another query, its own entry
    assert "No dataset matches" in other


def test_a_listing_change_shows_at_once(settings) -> None:
    settings.CATALOGUE_CACHE_S = 3600
    donor = cast(User, UserFactory(role=Role.DONOR))
    listed(donor, "Asthma panel")
    assert "Trio genomes" not in results_queries("/datasets/")[0]
    trio = listed(donor, "Trio genomes")
    assert "Trio genomes" in results_queries("/datasets/")[0]
    dataset_withdraw(actor=donor, dataset=trio)
    assert "Trio genomes" not in results_queries("/datasets/")[0]


def test_a_cache_that_is_down_is_passed_by(monkeypatch) -> None:
    down = RedisCache("redis://127.0.0.1:9/0", {})  # nothing listens there
    monkeypatch.setattr(results_cache, "cache", down)
    listed(cast(User, UserFactory(role=Role.DONOR)), "Asthma panel")
    html, built = results_queries("/datasets/?q=asthma")
    assert "Asthma panel" in html and built > 0
