"""The catalogue's "contains variant" search: the Beacon's code path, rendered for htmx,
with the caller's privacy budget."""

from __future__ import annotations

import pytest
from django.test import Client

from marketplace.models import Role
from tests.discovery.beacon_fixtures import GRU, HMB, listed_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(make_user) -> Client:
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.force_login(make_user(Role.RESEARCHER))
    return client


def test_the_catalogue_page_offers_the_search(client) -> None:
    page = client.get("/datasets/")
    assert b'id="f-variant"' in page.content and b"Ask the Beacon" in page.content


def test_it_lists_datasets_holding_the_variant_and_the_budget(
    make_user, researcher, settings
) -> None:
    settings.DISCLOSURE_USER_BUDGET = settings.DISCLOSURE_NETWORK_BUDGET = 50
    donor = make_user(Role.DONOR)
    gru = listed_dataset(
        donor, title="Common carriers", consent=(GRU,), alleles=[(17, 43044295, "A", "G", 150, 400)]
    )
    listed_dataset(donor, title="No carriers", alleles=[(17, 10, "C", "T", 90, 100)])
    page = researcher.get(
        "/discovery/variant-search",
        {"variant": "17:43044295 A>G", "duo": HMB},
        HTTP_HX_REQUEST="true",
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/datasets/{gru.pk}/" in html and "No carriers" not in html
    # the first query cost the absent dataset one unit: 49 of 50 left there
    assert 'data-budget-remaining="49"' in html and "of 50" in html
    rare = researcher.get("/discovery/variant-search", {"variant": "chr17-43044296-C-T"})
    assert 'data-budget-remaining="48"' in rare.content.decode()


def test_an_unreadable_variant_is_said_so(researcher) -> None:
    page = researcher.get("/discovery/variant-search", {"variant": "BRCA1 please"})
    assert "chromosome:position REF&gt;ALT" in page.content.decode()


@pytest.mark.parametrize(("datasets", "said"), [(1, "The one dataset"), (2, "None of the 2")])
def test_no_hit_names_how_many_datasets_were_searched(
    make_user, researcher, datasets: int, said: str
) -> None:
    donor = make_user(Role.DONOR)
    for number in range(datasets):
        listed_dataset(donor, title=f"d{number}", alleles=[(17, 10, "C", "T", 90, 100)])
    page = researcher.get("/discovery/variant-search", {"variant": "17:43044295 A>G"})
    assert said in page.content.decode(), page.content.decode()
