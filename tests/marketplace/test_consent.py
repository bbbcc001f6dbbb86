"""Consent matching: DUO permissions nest, conditions need commitments, and every refusal
says why."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from marketplace.consent import all_terms, parse_codes, purpose_fits

DIABETES, ASTHMA = "MONDO:0005148", "MONDO:0004979"


def codes(*items: object):
    return parse_codes(list(items), field="codes")


def fits(consent: list, purpose: list, access_days: int = 90):
    return purpose_fits(codes(*consent), codes(*purpose), access_days=access_days)


def test_the_shipped_terms_are_the_published_permissions_and_modifiers() -> None:
    terms = {t.id: t for t in all_terms()}
    assert terms["DUO:0000042"].shorthand == "GRU" and terms["DUO:0000042"].is_permission
    assert terms["DUO:0000046"].shorthand == "NCU" and not terms["DUO:0000046"].is_permission
    assert {t.shorthand for t in terms.values() if t.is_permission} == {
        "NRES",
        "GRU",
        "HMB",
        "DS",
        "POA",
    }
    assert len(terms) == 23


@pytest.mark.parametrize(
    ("consent", "purpose", "ok"),
    [
        ("DUO:0000004", "DUO:0000011", True),  # NRES allows ancestry
        ("DUO:0000042", "DUO:0000006", True),  # GRU allows HMB
        ("DUO:0000042", "DUO:0000011", True),  # GRU allows POA
        ("DUO:0000006", "DUO:0000011", False),  # HMB excludes POA
        ("DUO:0000006", "DUO:0000042", False),  # HMB does not allow general research
        ("DUO:0000011", "DUO:0000006", False),  # POA only
    ],
)
def test_permissions_nest(consent: str, purpose: str, ok: bool) -> None:
    assert fits([consent], [purpose]).fits is ok


def test_disease_specific_consent_needs_the_same_disease() -> None:
    consent = [{"code": "DUO:0000007", "value": DIABETES}]
    assert fits(consent, [{"code": "DUO:0000007", "value": DIABETES}]).fits
    match = fits(consent, [{"code": "DUO:0000007", "value": ASTHMA}])
    assert not match.fits and DIABETES in match.reasons[0]
    assert fits(["DUO:0000006"], [{"code": "DUO:0000007", "value": ASTHMA}]).fits


def test_non_commercial_use_must_be_committed_to() -> None:
    consent = ["DUO:0000042", "DUO:0000046"]
    match = fits(consent, ["DUO:0000042"])
    assert not match.fits and "NCU" in match.reasons[0]
    assert fits(consent, ["DUO:0000042", "DUO:0000046"]).fits


def test_npuncu_is_met_by_both_halves() -> None:
    consent = ["DUO:0000042", "DUO:0000018"]
    assert not fits(consent, ["DUO:0000042", "DUO:0000046"]).fits
    assert fits(consent, ["DUO:0000042", "DUO:0000046", "DUO:0000045"]).fits


@pytest.mark.parametrize("modifier", ["DUO:0000021", "DUO:0000019", "DUO:0000016"])
def test_irb_pub_and_gso_are_commitments(modifier: str) -> None:
    assert not fits(["DUO:0000042", modifier], ["DUO:0000042"]).fits
    assert fits(["DUO:0000042", modifier], ["DUO:0000042", modifier]).fits


def test_time_limit_bounds_the_access_period() -> None:
    consent = ["DUO:0000042", {"code": "DUO:0000025", "value": "3"}]
    assert fits(consent, ["DUO:0000042"], access_days=90).fits
    match = fits(consent, ["DUO:0000042"], access_days=200)
    assert not match.fits and "3 months" in match.reasons[0]


def test_geographic_restriction_needs_the_region() -> None:
    consent = ["DUO:0000042", {"code": "DUO:0000022", "value": "EU"}]
    assert not fits(consent, ["DUO:0000042"]).fits
    assert fits(consent, ["DUO:0000042", {"code": "DUO:0000022", "value": "EU"}]).fits


def test_npoa_refuses_ancestry_research() -> None:
    assert not fits(["DUO:0000042", "DUO:0000044"], ["DUO:0000011"]).fits
    assert fits(["DUO:0000042", "DUO:0000044"], ["DUO:0000006"]).fits


def test_clinical_care_use_needs_consent_for_it() -> None:
    assert not fits(["DUO:0000006"], ["DUO:0000006", "DUO:0000043"]).fits
    assert fits(["DUO:0000006", "DUO:0000043"], ["DUO:0000006", "DUO:0000043"]).fits


def test_user_project_institution_restrictions_go_to_the_committee() -> None:
    match = fits(["DUO:0000042", "DUO:0000028"], ["DUO:0000042"])
    assert match.fits and not match.auto_approvable
    assert "IS" in match.committee_checks[0]


def test_a_purpose_needs_exactly_one_permission() -> None:
    assert not fits(["DUO:0000042"], ["DUO:0000046"]).fits
    assert not fits(["DUO:0000042"], ["DUO:0000042", "DUO:0000006"]).fits


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["DUO:9999999"], "not a supported"),
        (["DUO:0000007"], "needs a value"),
        ([{"code": "DUO:0000007", "value": "diabetes"}], "needs a value"),
        ([{"code": "DUO:0000042", "value": "x"}], "takes no value"),
        ([42], "not a DUO code"),
    ],
)
def test_bad_codes_are_refused(raw: list, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_codes(raw, field="duo_codes")
    assert message in caught.value.fields["duo_codes"][0]
