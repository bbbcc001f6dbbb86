"""Listing datasets, the catalogue's search and filters, and withdrawing consent."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from marketplace.models import AuditEntry, Dataset, Role
from tests.factories import ready_file

pytestmark = pytest.mark.django_db
DATASETS = "/api/v1/datasets"


def body(files, **overrides):
    return {
        "title": "Type 2 diabetes cohort",
        "description": "Exomes of 2,000 adults.",
        "files": [str(f.pk) for f in files],
        "duo_codes": ["DUO:0000006", "DUO:0000046"],
        "price": "1000000000000000000",
        "access_days": 90,
        "review": "committee",
        **overrides,
    }


@pytest.fixture
def donor(client_for):
    return client_for(Role.DONOR)


def test_a_donor_lists_ready_files(donor) -> None:
    client, user = donor
    files = [ready_file(user), ready_file(user, filename="b.bam", fmt="BAM")]
    response = client.post(DATASETS, body(files), format="json")
    assert response.status_code == 201, response.json()
    listing = response.json()
    assert listing["price"] == "1000000000000000000"
    assert [c["shorthand"] for c in listing["duo_codes"]] == ["HMB", "NCU"]
    assert len(listing["provenance"]["record_hash"]) == 64
    assert listing["provenance"]["anchor_tx"] is None
    assert {f["format"] for f in listing["metadata"]["files"]} == {"VCF", "BAM"}
    assert AuditEntry.objects.filter(action="dataset.create").count() == 1


def test_only_donors_list(client_for) -> None:
    client, user = client_for(Role.RESEARCHER)
    assert client.post(DATASETS, body([ready_file(user)]), format="json").status_code == 403


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"duo_codes": ["DUO:0000006", "DUO:0000042"]}, "duo_codes"),
        ({"duo_codes": ["DUO:0000046"]}, "duo_codes"),
        ({"duo_codes": ["DUO:1234567"]}, "duo_codes"),
        ({"price": "1.5"}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": "0"}, "price"),
        ({"price": str(2**96)}, "price"),  # more than the escrow holds: never payable
        ({"price": "9" * 78}, "price"),
        ({"access_days": 0}, "access_days"),
        ({"review": "maybe"}, "review"),
    ],
)
def test_bad_listings_are_refused(donor, override: dict, field: str) -> None:
    client, user = donor
    response = client.post(DATASETS, body([ready_file(user)], **override), format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Dataset.objects.exists()


def test_someone_elses_or_unready_files_are_refused(donor, make_user) -> None:
    client, user = donor
    other = ready_file(make_user(Role.DONOR))
    assert client.post(DATASETS, body([other]), format="json").status_code == 400
    unready = ready_file(user)
    unready.state = "ingesting"
    unready.save()
    response = client.post(DATASETS, body([unready]), format="json")
    assert response.status_code == 400 and "not ready" in response.json()["error"]["message"]


@pytest.fixture
def catalogue(donor):
    client, user = donor
    made = {}
    for title, fmt, build, codes, price in (
        ("Diabetes exomes", "VCF", "GRCh38", ["DUO:0000006"], "100"),
        ("Asthma whole genomes", "CRAM", "GRCh37", ["DUO:0000042", "DUO:0000046"], "500"),
        ("Ancestry panel", "23andMe", "GRCh37", ["DUO:0000011"], "50"),
    ):
        response = client.post(
            DATASETS,
            body(
                [ready_file(user, fmt=fmt, build=build)], title=title, duo_codes=codes, price=price
            ),
            format="json",
        )
        made[title] = response.json()["id"]
    return made


def titles(response) -> list[str]:
    return sorted(item["title"] for item in response.json()["results"])


def test_the_catalogue_is_public_and_filters(catalogue, api_client: APIClient) -> None:
    assert len(titles(api_client.get(DATASETS))) == 3
    assert titles(api_client.get(DATASETS, {"q": "genome"})) == ["Asthma whole genomes"]
    assert titles(api_client.get(DATASETS, {"format": "CRAM"})) == ["Asthma whole genomes"]
    # `duo` is a research purpose: the datasets whose consent it would fit.
    assert titles(api_client.get(DATASETS, {"duo": "DUO:0000006"})) == ["Diabetes exomes"]
    assert titles(api_client.get(DATASETS, {"duo": "DUO:0000006,DUO:0000046"})) == [
        "Asthma whole genomes",
        "Diabetes exomes",
    ]
    assert titles(api_client.get(DATASETS, {"max_price": "100"})) == [
        "Ancestry panel",
        "Diabetes exomes",
    ]
    assert titles(api_client.get(DATASETS, {"reference": "GRCh37", "max_price": "60"})) == [
        "Ancestry panel"
    ]


def test_catalogue_pagination_and_bad_filters(catalogue, api_client: APIClient) -> None:
    page = api_client.get(DATASETS, {"page": 1}).json()
    assert page["count"] == 3 and "next" in page
    assert api_client.get(DATASETS, {"duo": "HMB"}).status_code == 400
    assert api_client.get(DATASETS, {"duo": "DUO:0000006,DUO:0000042"}).status_code == 400
    assert api_client.get(DATASETS, {"duo": "DUO:0000014"}).status_code == 400  # obsolete
    assert api_client.get(DATASETS, {"max_price": "cheap"}).status_code == 400
    assert api_client.get(DATASETS, {"page": 99}).status_code == 404


def test_withdrawn_datasets_leave_the_catalogue(catalogue, donor, api_client, client_for) -> None:
    client, _ = donor
    dataset_id = catalogue["Diabetes exomes"]
    other, _ = client_for(Role.DONOR)
    assert other.post(f"{DATASETS}/{dataset_id}/withdraw").status_code == 403
    assert client.post(f"{DATASETS}/{dataset_id}/withdraw").json()["state"] == "withdrawn"
    assert client.post(f"{DATASETS}/{dataset_id}/withdraw").status_code == 200  # idempotent
    assert "Diabetes exomes" not in titles(api_client.get(DATASETS))
    assert api_client.get(f"{DATASETS}/{dataset_id}").status_code == 404
    assert client.get(f"{DATASETS}/{dataset_id}").status_code == 200
    assert AuditEntry.objects.filter(action="dataset.withdraw").count() == 1


@pytest.mark.parametrize("price", [str(2**96), "9" * 78, str(2**256)])
def test_a_price_the_escrow_cannot_hold_is_refused(price) -> None:
    """Finding 7 of the settlement review: 78 digits were accepted; above 2^96 a voucher
    cannot be paid, above 2^256 signing fails forever."""
    from core.errors import ValidationError
    from marketplace.services.datasets import _price

    with pytest.raises(ValidationError) as refused:
        _price(price)
    assert "escrow can hold" in refused.value.message
    assert _price(str(2**96 - 1)) == 2**96 - 1
