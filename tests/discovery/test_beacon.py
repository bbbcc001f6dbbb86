"""Beacon v2 (issue 18 §2): every answer validates against the official schemas of
ga4gh-beacon/beacon-v2 v2.1.1 (shipped under beacon_schemas/), queries find what the
index holds, filtering terms mean what the consent matcher says, and every per-dataset
answer goes through the disclosure control."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from rest_framework.test import APIClient

from marketplace.models import Role
from tests.discovery.beacon_fixtures import DS, GRU, HMB, listed_dataset

pytestmark = pytest.mark.django_db

SHIPPED = Path(__file__).parent / "beacon_schemas" / "v2.1.1"
SCHEMAS = SHIPPED / "framework" / "json"
MODEL = SHIPPED / "models" / "json" / "beacon-v2-default-model" / "genomicVariations"
BRCA1 = (17, 43044295, "A", "G")


@cache
def _registry() -> Registry:
    resources = []
    for path in SHIPPED.rglob("*.json"):
        contents = json.loads(path.read_text())
        resources.append(
            (path.as_uri(), Resource.from_contents(contents, default_specification=DRAFT202012))
        )
    return Registry().with_resources(resources)


def assert_valid(document: dict[str, Any], schema: str) -> None:
    """Validate against framework/json/<schema>, every $ref resolved by `referencing`."""
    uri = (SCHEMAS / schema).as_uri()
    validator = Draft202012Validator({"$ref": uri}, registry=_registry())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def assert_valid_g_variant(parameters: dict[str, Any]) -> None:
    """The default model's g_variant request parameters (start/end as integer arrays)."""
    uri = (MODEL / "requestParameters.json").as_uri() + "#/g_variant"
    validator = Draft202012Validator({"$ref": uri}, registry=_registry())
    assert not [e.message for e in validator.iter_errors(parameters)]


def assert_echo_valid(document: dict[str, Any]) -> None:
    summary = document["meta"]["receivedRequestSummary"]
    assert_valid_g_variant(summary["requestParameters"]["g_variant"])


@pytest.fixture
def cohorts(make_user):
    donor = make_user(Role.DONOR)
    common = (*BRCA1, 120, 400)  # AF 0.3: answered exactly
    return {
        "gru": listed_dataset(
            donor, title="gru", consent=(GRU,), alleles=[common], granularity="count"
        ),
        "hmb": listed_dataset(donor, title="hmb", consent=(HMB,), alleles=[common]),
        "ds": listed_dataset(donor, title="ds", consent=(f"{DS}",), alleles=[common]),
        "rare": listed_dataset(
            donor, title="rare", alleles=[(*BRCA1, 2, 4000)], granularity="count"
        ),
        "none": listed_dataset(donor, title="none", alleles=[(17, 100, "C", "T", 50, 100)]),
        "bcf37": listed_dataset(
            donor, title="bcf37", alleles=[common], assembly="GRCh37", fmt="BCF"
        ),
    }


def _get(path: str, **params: Any) -> Any:
    response = APIClient().get(f"/api/beacon/v2/{path}", params, REMOTE_ADDR="198.51.100.7")
    return response


def _found(document: dict[str, Any]) -> set[str]:
    return {r["info"]["name"] for r in document["response"]["resultSets"]}


@pytest.mark.parametrize(
    "path,schema",
    [
        ("info", "responses/beaconInfoResponse.json"),
        ("service-info", "responses/ga4gh-service-info-1-0-0-schema.json"),
        ("configuration", "responses/beaconConfigurationResponse.json"),
        ("map", "responses/beaconMapResponse.json"),
        ("entry_types", "responses/beaconEntryTypesResponse.json"),
        ("filtering_terms", "responses/beaconFilteringTermsResponse.json"),
        ("datasets", "responses/beaconCollectionsResponse.json"),
    ],
)
def test_informational_answers_validate(cohorts, path, schema) -> None:
    response = _get(path)
    assert response.status_code == 200, response.content
    assert_valid(response.json(), schema)


def test_a_sequence_query_uses_0_based_start_and_validates(cohorts) -> None:
    response = _get(
        "g_variants",
        referenceName="17",
        start=43044294,
        referenceBases="A",
        alternateBases="G",
        requestedGranularity="count",
    )
    assert response.status_code == 200, response.content
    document = response.json()
    assert_valid(document, "responses/beaconResultsetsResponse.json")
    assert_echo_valid(document)
    assert document["meta"]["returnedGranularity"] == "count"
    # the rare allele is suppressed (told apart from absence by nothing)
    assert _found(document) == {"gru", "hmb", "ds", "bcf37"}
    counts = {r["info"]["name"]: r["resultsCount"] for r in document["response"]["resultSets"]}
    assert counts["gru"] == 120  # the donor chose counts; common: exact
    assert counts["hmb"] == 1  # boolean dataset: "at least one"
    # the VCF position as start (off by one) finds nothing
    assert not _found(
        _get(
            "g_variants", referenceName="17", start=43044295, referenceBases="A", alternateBases="G"
        ).json()
    )


def test_boolean_requests_validate_and_do_not_count(cohorts) -> None:
    document = _get(
        "g_variants",
        referenceName="chr17",
        start=43044294,
        referenceBases="a",
        alternateBases="g",
    ).json()
    assert_valid(document, "responses/beaconResultsetsResponse.json")
    assert_valid(document, "responses/beaconBooleanResponse.json")
    assert document["meta"]["returnedGranularity"] == "boolean"
    assert {r["resultsCount"] for r in document["response"]["resultSets"]} == {1}


def test_a_padded_spelling_matches_the_same_variant(cohorts) -> None:
    """AT>GT at 43044294 is A>G once the shared suffix is trimmed."""
    document = _get(
        "g_variants",
        referenceName="17",
        start=43044294,
        referenceBases="AT",
        alternateBases="GT",
    ).json()
    assert _found(document) == {"gru", "hmb", "ds", "bcf37"}


def test_range_and_bracket_queries(cohorts) -> None:
    around = {"referenceName": "17", "start": 43044290, "end": 43044300}
    assert _found(_get("g_variants", **around).json()) == {"gru", "hmb", "ds", "bcf37"}
    assert not _found(_get("g_variants", **around, variantType="DEL").json())
    assert _found(_get("g_variants", **around, variantType="SNP").json())
    before = {"referenceName": "17", "start": 43044200, "end": 43044294}
    assert not _found(_get("g_variants", **before).json())  # end is exclusive
    bracket = _get(
        "g_variants", referenceName="17", start="43044290,43044294", end="43044295,43044296"
    ).json()
    assert_valid(bracket, "responses/beaconResultsetsResponse.json")
    assert_echo_valid(bracket)
    assert _found(bracket) == {"gru", "hmb", "ds", "bcf37"}
    assert not _found(
        _get(
            "g_variants", referenceName="17", start="43044290,43044293", end="43044295,43044296"
        ).json()
    )


def test_assembly_id_restricts_to_that_assembly(cohorts) -> None:
    params = {
        "referenceName": "17",
        "start": 43044294,
        "referenceBases": "A",
        "alternateBases": "G",
    }
    assert _found(_get("g_variants", **params, assemblyId="GRCh37").json()) == {"bcf37"}
    assert "bcf37" not in _found(_get("g_variants", **params, assemblyId="hg38").json())


def test_hmb_filter_means_what_the_consent_matcher_says(cohorts) -> None:
    """ "Datasets that allow HMB and contain 17:43044295 A>G" in one query: GRU datasets
    allow an HMB purpose; a DS-only one does not."""
    body: dict[str, Any] = {
        "meta": {"apiVersion": "v2.1.1"},
        "query": {
            "requestParameters": {
                "g_variant": {
                    "referenceName": "17",
                    "start": [43044294],
                    "referenceBases": "A",
                    "alternateBases": "G",
                }
            },
            "filters": [{"id": HMB}],
            "requestedGranularity": "boolean",
        },
    }
    assert_valid(body, "requests/beaconRequestBody.json")
    assert_valid_g_variant(body["query"]["requestParameters"]["g_variant"])
    response = APIClient().post(
        "/api/beacon/v2/g_variants", body, format="json", REMOTE_ADDR="198.51.100.7"
    )
    assert response.status_code == 200, response.content
    assert_valid(response.json(), "responses/beaconResultsetsResponse.json")
    assert _found(response.json()) == {"gru", "hmb", "bcf37"}
    vcf_only = _get(
        "g_variants",
        referenceName="17",
        start=43044294,
        referenceBases="A",
        alternateBases="G",
        filters=f"{HMB},EDAM:format_3016",
    ).json()
    assert _found(vcf_only) == {"gru", "hmb"}


def test_filtering_terms_list_duo_codes_and_formats(cohorts) -> None:
    terms = {t["id"]: t for t in _get("filtering_terms").json()["response"]["filteringTerms"]}
    assert {GRU, HMB, DS, "EDAM:format_3016", "EDAM:format_3020"} <= set(terms)
    assert terms["EDAM:format_3020"]["label"] == "BCF"


def test_bad_queries_get_a_beacon_error(cohorts) -> None:
    for params in (
        {"referenceName": "17"},
        {"referenceName": "chrUn", "start": 1, "referenceBases": "A", "alternateBases": "G"},
        {"referenceName": "17", "start": "x", "end": 5},
        {"referenceName": "17", "start": 10, "end": 5},
        {"referenceName": "17", "start": 10, "end": 50, "variantType": "BOGUS"},
        {
            "referenceName": "17",
            "start": 1,
            "referenceBases": "A",
            "alternateBases": "G",
            "filters": "NOPE:1",
        },
        {
            "referenceName": "17",
            "start": 1,
            "referenceBases": "A",
            "alternateBases": "G",
            "requestedGranularity": "everything",
        },
        # Wildcards (Beacon v2: N is any base, IUPAC codes sets of bases): the index holds
        # exact bases, so these would match nothing and cost budget on a rare site.
        {"referenceName": "17", "start": 1, "referenceBases": "A", "alternateBases": "N"},
        {"referenceName": "17", "start": 1, "referenceBases": "N", "alternateBases": "G"},
        {"referenceName": "17", "start": 1, "referenceBases": "A", "alternateBases": "R"},
        {"referenceName": "17", "start": 1, "end": 50, "alternateBases": "AN"},
    ):
        response = _get("g_variants", **params)
        assert response.status_code == 400, (params, response.content)
        assert_valid(response.json(), "responses/beaconErrorResponse.json")
    wildcard = {"referenceName": "17", "start": 1, "referenceBases": "A", "alternateBases": "N"}
    assert "wildcards" in _get("g_variants", **wildcard).json()["error"]["errorMessage"]


def test_every_dataset_answer_goes_through_the_disclosure_control(cohorts, monkeypatch) -> None:
    """One call site, for every dataset (absent ones too): a refusal of the disclosure
    control removes the dataset from the answer."""
    import discovery.beacon.answers as answers
    from disclosure.services import BudgetExhausted

    real = answers.release_answers
    asked: list[str] = []

    def refuse_gru(**kwargs):
        asked.extend(str(d) for d in kwargs["asked"])
        released = real(**kwargs)
        released[cohorts["gru"].pk] = BudgetExhausted("spent", holder="net:x", renews_at=None)
        return released

    monkeypatch.setattr(answers, "release_answers", refuse_gru)
    document = _get(
        "g_variants", referenceName="17", start=43044294, referenceBases="A", alternateBases="G"
    ).json()
    assert sorted(asked) == sorted(str(d.pk) for d in cohorts.values())
    assert "gru" not in _found(document)
    assert document["info"]["budgetSpentOn"] == [str(cohorts["gru"].pk)]


def test_a_spent_budget_answers_429_and_a_repeat_costs_nothing(cohorts, settings) -> None:
    settings.DISCLOSURE_NETWORK_BUDGET = 2
    rare = {"referenceName": "17", "referenceBases": "A", "alternateBases": "C"}
    for start in (5, 6, 5):  # the repeat of 5 is free: its stored answer is served
        assert _get("g_variants", start=start, **rare).status_code == 200
    response = _get("g_variants", start=7, **rare)
    assert response.status_code == 429
    assert_valid(response.json(), "responses/beaconErrorResponse.json")
    assert " is spent until 20" in response.json()["error"]["errorMessage"]  # when it renews
    # a common allele costs nothing and is still answered
    common = _get(
        "g_variants", referenceName="17", start=43044294, referenceBases="A", alternateBases="G"
    )
    assert common.status_code == 200 and "gru" in _found(common.json())


def test_the_donor_chooses_the_granularity(cohorts, client_for) -> None:
    hmb = cohorts["hmb"]
    stranger, _ = client_for(Role.DONOR)
    url = f"/api/v1/datasets/{hmb.pk}/beacon"
    assert stranger.put(url, {"granularity": "count"}, format="json").status_code == 403
    owner = APIClient()
    owner.force_authenticate(hmb.donor)
    assert owner.put(url, {"granularity": "record"}, format="json").status_code == 400
    assert owner.put(url, {"granularity": "count"}, format="json").json() == {
        "granularity": "count"
    }
    document = _get(
        "g_variants",
        referenceName="17",
        start=43044294,
        referenceBases="A",
        alternateBases="G",
        requestedGranularity="count",
    ).json()
    counts = {r["info"]["name"]: r["resultsCount"] for r in document["response"]["resultSets"]}
    assert counts["hmb"] == 120


def test_a_listing_or_a_file_indexed_after_a_query_is_found_at_once(cohorts) -> None:
    """The lookup's dataset list and map of indexed files are cached (shared cache and
    process memory) under the catalogue's generation: a new listing, or a file indexed
    into a listed dataset (the ingest moves the generation on at commit), is seen by the
    next query."""
    from discovery.models import VariantAllele, VariantSource
    from marketplace.web.results_cache import catalogue_changed
    from tests.factories import ready_file

    brca1 = {"referenceName": "17", "start": 43044294, "referenceBases": "A", "alternateBases": "G"}
    assert "late" not in _found(_get("g_variants", **brca1).json())
    listed_dataset(cohorts["none"].donor, title="late", alleles=[(*BRCA1, 150, 400)])
    assert "late" in _found(_get("g_variants", **brca1).json())
    none = cohorts["none"]
    second = ready_file(none.donor, filename="second.vcf.gz", fmt="VCF", build="GRCh38")
    none.files.add(second)
    assert "none" not in _found(_get("g_variants", **brca1).json())  # not indexed yet
    source = VariantSource.objects.create(file=second, assembly="GRCh38", alleles=1)
    VariantAllele.objects.create(
        chrom=17, pos=43044295, ref="A", alt="G", allele_count=90, allele_number=300,
        source=source, kind=1,
    )  # fmt: skip
    catalogue_changed()  # what discovery.variants.tap does when the index commits
    assert "none" in _found(_get("g_variants", **brca1).json())
