"""The catalogue's consent filter answers by the consent matcher's rule (issue 16, item 2;
DESIGN "Consent"), from tokens precomputed on every save: "allows HMB" includes GRU."""

from __future__ import annotations

import pytest
from django.test import Client

from marketplace.consent import parse_codes, purpose_fits
from marketplace.consent.codes import ConsentCode
from marketplace.models import Dataset, Role
from marketplace.selectors import datasets as selectors
from marketplace.selectors.datasets import DatasetFilters, dataset_list
from marketplace.services.datasets import dataset_update, datasets_consent_reindex
from tests.factories import ready_file

pytestmark = pytest.mark.django_db

GRU, HMB, DS, POA, NRES = "DUO:0000042", "DUO:0000006", "DUO:0000007", "DUO:0000011", "DUO:0000004"
NPUNCU, NPU, NCU, CC, IRB = (
    "DUO:0000018",
    "DUO:0000045",
    "DUO:0000046",
    "DUO:0000043",
    "DUO:0000021",
)
NPOA, US = "DUO:0000044", "DUO:0000026"
DIABETES, T2D, NIDDM1 = "MONDO:0005015", "MONDO:0005148", "MONDO:0011027"
CF, ASTHMA = "MONDO:0009061", "MONDO:0004979"


def ds(disease: str) -> dict[str, str]:
    return {"code": DS, "value": disease}


def gs(region: str) -> dict[str, str]:
    return {"code": "DUO:0000022", "value": region}


def ts(months: str) -> dict[str, str]:
    return {"code": "DUO:0000025", "value": months}


CONSENTS: list[list[object]] = [
    [NRES],
    [GRU],
    [HMB],
    [POA],
    [GRU, NCU],
    [GRU, NPUNCU],
    [HMB, NPU, IRB],
    [GRU, NPOA],
    [GRU, CC],
    [GRU, US],
    [GRU, gs("EU")],
    [GRU, gs("North America")],
    [GRU, ts("1")],  # one month: shorter than the 90-day access period, nothing fits
    [ds(T2D)],
    [ds(DIABETES), NCU],
    [ds(T2D), ds(CF)],
    [ds(ASTHMA)],
]
PURPOSES: list[list[object]] = [
    [NRES],
    [GRU],
    [HMB],
    [POA],
    [HMB, NCU],
    [GRU, NPUNCU],
    [HMB, NPU, NCU, IRB],
    [HMB, NPUNCU, IRB],
    [HMB, CC],
    [GRU, gs("EU")],
    [GRU, gs("north america")],
    [ds(T2D)],
    [ds(NIDDM1), NCU],
    [ds(DIABETES), NPUNCU],
    [ds(CF)],
    [ds(ASTHMA)],
    [ds(NIDDM1), ds(CF)],
    [POA, NPUNCU],
]


@pytest.fixture
def catalogue(make_user):
    donor = make_user(Role.DONOR)
    made = {}
    for index, consent in enumerate(CONSENTS):
        codes = parse_codes(consent, field="duo_codes")
        made[index] = Dataset.objects.create(
            donor=donor,
            title=f"dataset {index}",
            price=10,
            access_days=90,
            duo_codes=[{"code": c.code, "value": c.value} for c in codes],
            record_hash="0" * 64,
        )
    return made


def _found(purpose: tuple[ConsentCode, ...], *, postgres: bool) -> set[str]:
    base = Dataset.objects.filter(state=Dataset.State.LISTED)
    query = selectors.purpose_query(purpose)
    return set(
        selectors._consent_filter(base, query, postgres=postgres).values_list("title", flat=True)
    )


@pytest.mark.parametrize(
    ("postgres", "signed_limit"),
    [(True, 512), (True, 0), (False, 512)],
    ids=["gin-signed-tokens", "gin-containment", "portable-like"],
)
def test_the_filter_agrees_with_the_matcher_on_every_consent_and_purpose(
    catalogue, monkeypatch, postgres: bool, signed_limit: int
) -> None:
    """Each purpose finds exactly the datasets the matcher allows (fits or needs review),
    whichever way the filter is spelled."""
    from marketplace.consent import index

    monkeypatch.setattr(index, "SIGNED_TOKENS_LIMIT", signed_limit)
    disagreements = []
    for purpose_raw in PURPOSES:
        purpose = tuple(parse_codes(purpose_raw, field="purpose"))
        expected = {
            dataset.title
            for dataset in catalogue.values()
            if purpose_fits(
                [ConsentCode(c["code"], c["value"]) for c in dataset.duo_codes],
                purpose,
                access_days=dataset.access_days,
            ).allowed
        }
        found = _found(purpose, postgres=postgres)
        if found != expected:
            disagreements.append((purpose_raw, sorted(found ^ expected)))
    assert not disagreements


def test_every_grid_consent_is_found_by_some_purpose_but_the_expired_one(catalogue) -> None:
    """The grid exercises the filter: all but the one-month TS dataset fit something."""
    seen: set[str] = set()
    for purpose_raw in PURPOSES:
        seen |= _found(tuple(parse_codes(purpose_raw, field="p")), postgres=True)
    assert {d.title for d in catalogue.values()} - seen == {"dataset 12"}


def test_consent_allows_hmb_includes_general_research_datasets(client_for, api_client) -> None:
    """Issue 16.2's example, through the API and the page."""
    client, donor = client_for(Role.DONOR)
    for title, codes in (
        ("General research cohort", [GRU]),
        ("Biomedical cohort", [HMB]),
        ("Ancestry panel", [POA]),
        ("Diabetes only", [ds(T2D)]),
    ):
        body = {
            "title": title,
            "files": [str(ready_file(donor).pk)],
            "duo_codes": codes,
            "price": "100",
            "access_days": 90,
            "review": "committee",
        }
        assert client.post("/api/v1/datasets", body, format="json").status_code == 201
    listed = api_client.get("/api/v1/datasets", {"duo": HMB}).json()["results"]
    assert sorted(d["title"] for d in listed) == ["Biomedical cohort", "General research cohort"]
    ancestry = api_client.get("/api/v1/datasets", {"duo": POA}).json()["results"]
    assert sorted(d["title"] for d in ancestry) == ["Ancestry panel", "General research cohort"]
    subtype = api_client.get("/api/v1/datasets", {"duo": f"{DS}={NIDDM1}"}).json()["results"]
    assert sorted(d["title"] for d in subtype) == [
        "Biomedical cohort",
        "Diabetes only",
        "General research cohort",
    ]
    page = Client().get("/datasets/", {"duo": HMB}).content.decode()
    assert "General research cohort" in page and "Ancestry panel" not in page


def test_the_tokens_follow_every_listing_save(make_user) -> None:
    donor = make_user(Role.DONOR)
    file = ready_file(donor)
    dataset = Dataset.objects.create(
        donor=donor,
        title="cohort",
        price=10,
        access_days=90,
        duo_codes=[{"code": HMB, "value": ""}],
        record_hash="0" * 64,
    )
    dataset.files.set([file])
    hmb = DatasetFilters(duo=(ConsentCode(HMB),))
    poa = DatasetFilters(duo=(ConsentCode(POA),))
    assert list(dataset_list(filters=hmb)) == [dataset]
    assert not dataset_list(filters=poa).exists()
    dataset_update(
        dataset=dataset,
        actor=donor,
        title="cohort",
        description="",
        files=[file.pk],
        duo_codes=[GRU, NCU],
        price="10",
        access_days=90,
        review="committee",
    )
    assert not dataset_list(filters=hmb).exists()  # now needs a commitment to NCU
    with_ncu = DatasetFilters(duo=(ConsentCode(POA), ConsentCode(NCU)))
    assert list(dataset_list(filters=with_ncu)) == [dataset]
    dataset.refresh_from_db()
    dataset.access_days = 400  # longer than the 12 months TS allows: nothing fits
    dataset.duo_codes = [*dataset.duo_codes, {"code": "DUO:0000025", "value": "12"}]
    dataset.save(update_fields=["duo_codes", "access_days"])
    assert not dataset_list(filters=with_ncu).exists()


def test_reindex_recomputes_stale_tokens(catalogue) -> None:
    Dataset.objects.update(duo_fits="", duo_requires="")
    assert datasets_consent_reindex() == len(CONSENTS) - 1  # the TS one has no tokens
    assert _found((ConsentCode(HMB),), postgres=True) >= {"dataset 0", "dataset 1"}


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ({"duo": "DUO:0000006"}, 200),
        ({"duo": ["DUO:0000006", "DUO:0000046"]}, 200),
        ({"duo": "DUO:0000007"}, 200),  # any disease
        ({"duo": "DUO:0000007=MONDO:0005148,DUO:0000007=MONDO:0009061"}, 200),
        ({"duo": "DUO:0000007=diabetes"}, 400),
        ({"duo": "DUO:0000042,DUO:0000011"}, 400),
        ({"duo": "DUO:0000042=x"}, 400),
    ],
)
def test_the_api_filter_reads_a_purpose(api_client, raw: dict, status: int) -> None:
    assert api_client.get("/api/v1/datasets", raw).status_code == status


def test_a_filter_any_disease_finds_disease_specific_and_broader_consents(catalogue) -> None:
    found = _found((ConsentCode(DS),), postgres=True)
    assert {"dataset 13", "dataset 16", "dataset 0", "dataset 1", "dataset 2"} <= found
    assert "dataset 3" not in found  # POA


def test_a_donor_names_several_diseases_in_the_listing_form(make_user) -> None:
    from tests.support.web import logged_in

    donor = make_user(Role.DONOR)
    form = {
        "title": "Two cohorts",
        "description": "",
        "file_ids": [str(ready_file(donor).pk)],
        "permission": DS,
        "disease": f"{T2D}, {CF}",
        "price": "1",
        "access_days": "30",
        "review": "committee",
    }
    response = logged_in(donor).post("/datasets/new/", form)
    assert response.status_code == 302
    dataset = Dataset.objects.get(title="Two cohorts")
    assert [c["value"] for c in dataset.duo_codes] == [T2D, CF]
    detail = Client().get(f"/datasets/{dataset.pk}/").content.decode()
    # The disease by its name, its MONDO id in small print (issue 16 §10).
    assert 'type 2 diabetes mellitus <small class="code-id">MONDO:0005148</small>' in detail
    page = Client().get("/datasets/", {"duo": DS, "disease": NIDDM1}).content.decode()
    assert "Two cohorts" in page


def test_the_catalogue_page_says_when_a_purpose_cannot_be_read() -> None:
    page = Client().get("/datasets/", {"duo": DS, "disease": "diabetes"}).content.decode()
    assert "needs a value: a disease, as a MONDO id" in page


def test_reviewers_see_a_purpose_that_needs_review_as_such(make_user) -> None:
    from marketplace.consent import MATCHER_VERSION
    from marketplace.services.access_requests import request_submit
    from tests.support.web import logged_in

    donor = make_user(Role.DONOR)
    dataset = Dataset.objects.create(
        donor=donor,
        title="Diabetes cohort",
        price=10,
        access_days=90,
        duo_codes=[ds(T2D)],
        record_hash="0" * 64,
    )
    request = request_submit(
        researcher=make_user(Role.RESEARCHER),
        dataset_id=dataset.pk,
        purpose_codes=[ds(ASTHMA)],
        statement="Asthma comorbidity.",
        accept_terms=True,
    )
    reviewer = logged_in(make_user(Role.REVIEWER))
    assert "needs review" in reviewer.get("/review/").content.decode()
    page = reviewer.get(f"/requests/{request.pk}/").content.decode()
    assert "the committee must check" in page and MATCHER_VERSION in page
