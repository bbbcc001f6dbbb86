"""Consent matching: DUO permissions nest, conditions need commitments, terms DUO relates
imply each other as the shipped ontology says, diseases match through MONDO, and every rule
answers fits / needs review / does not fit with its reason."""

from __future__ import annotations

import csv

import pytest

from core.errors import ValidationError
from marketplace.consent import MATCHER_VERSION, Outcome, all_terms, parse_codes, purpose_fits
from marketplace.consent import diseases as disease_data
from marketplace.consent import terms as term_data
from marketplace.web.forms import ConsentFields

GRU, HMB, DS, POA, NRES = "DUO:0000042", "DUO:0000006", "DUO:0000007", "DUO:0000011", "DUO:0000004"
NPUNCU, NPU, NCU, CC, IRB = (
    "DUO:0000018",
    "DUO:0000045",
    "DUO:0000046",
    "DUO:0000043",
    "DUO:0000021",
)
GRU_CC, RU = "DUO:0000005", "DUO:0000014"  # obsolete in DUO
# MONDO (release 2026-08-04): NIDDM1 < type 2 diabetes < diabetes mellitus.
DIABETES, T2D, NIDDM1 = "MONDO:0005015", "MONDO:0005148", "MONDO:0011027"
CYSTIC_FIBROSIS = "MONDO:0009061"
ASTHMA = "MONDO:0004979"  # real MONDO, but outside the shipped subset


def codes(*items: object):
    return parse_codes(list(items), field="codes")


def fits(consent: list, purpose: list, access_days: int = 90):
    return purpose_fits(codes(*consent), codes(*purpose), access_days=access_days)


def ds(*diseases: str) -> list[dict[str, str]]:
    return [{"code": DS, "value": d} for d in diseases]


def test_the_shipped_terms_are_the_published_permissions_and_modifiers() -> None:
    terms = {t.id: t for t in all_terms()}
    assert terms[GRU].shorthand == "GRU" and terms[GRU].is_permission
    assert terms[NCU].shorthand == "NCU" and not terms[NCU].is_permission
    assert {t.shorthand for t in terms.values() if t.is_permission} == {
        "NRES",
        "GRU",
        "HMB",
        "DS",
        "POA",
    }
    assert len(terms) == 23
    assert GRU_CC not in terms and term_data.obsolete_term(GRU_CC) is not None


@pytest.mark.parametrize(
    ("consent", "purpose", "ok"),
    [
        (NRES, POA, True),  # NRES allows ancestry (DUO: "no restriction on use")
        (GRU, HMB, True),  # GRU allows HMB (HMB subClassOf GRU)
        (GRU, POA, True),  # GRU includes ancestry research (GRU's definition, DUOS)
        (HMB, POA, False),  # HMB excludes POA
        (HMB, GRU, False),  # HMB does not allow general research
        (POA, HMB, False),  # POA only
    ],
)
def test_permissions_nest(consent: str, purpose: str, ok: bool) -> None:
    assert fits([consent], [purpose]).allowed is ok


# --- Terms that imply others (issue 14, item 6) ----------------------------------------


def test_a_purpose_committing_to_npuncu_meets_a_consent_requiring_ncu_or_npu() -> None:
    """The issue's example: NPUNCU (DUO:0000018) was split into NPU and NCU, its
    definition is their conjunction, so committing to it commits to both."""
    assert fits([GRU, NCU], [GRU, NPUNCU]).outcome == Outcome.FITS
    assert fits([GRU, NPU], [GRU, NPUNCU]).outcome == Outcome.FITS
    assert fits([GRU, NPU, NCU], [HMB, NPUNCU]).outcome == Outcome.FITS


def test_npuncu_is_met_by_both_halves_and_not_by_one() -> None:
    consent = [GRU, NPUNCU]
    match = fits(consent, [GRU, NCU])
    assert match.outcome == Outcome.DOES_NOT_FIT
    assert "NPU (not for profit organisation use only)" in match.reasons[0]
    assert fits(consent, [GRU, NCU, NPU]).outcome == Outcome.FITS


def test_an_obsolete_consent_term_is_read_as_what_duo_replaced_it_with() -> None:
    """GRU-CC (DUO:0000005) is obsolete, 'term replaced by' GRU and CC: a clinical care
    purpose fits it, and a code sent today is stored as the current terms."""
    assert codes(GRU_CC) == codes(GRU, CC)
    assert fits([GRU_CC], [HMB, CC]).outcome == Outcome.FITS
    assert fits([HMB], [HMB, CC]).outcome == Outcome.DOES_NOT_FIT


def test_an_obsolete_term_without_replacement_is_refused_saying_so() -> None:
    with pytest.raises(ValidationError) as caught:
        codes(RU)
    assert "obsolete" in caught.value.fields["codes"][0]


def test_term_relations_come_from_the_shipped_ontology(tmp_path, monkeypatch) -> None:
    """Without the subClassOf rows NPU, NCU < NPUNCU the matcher no longer treats NPUNCU
    as its parts, nor HMB as within GRU without HMB < GRU: nothing is written in code."""
    trimmed = tmp_path / "duo_relations.csv"
    with term_data.RELATIONS_FILE.open(newline="") as source, trimmed.open("w") as target:
        rows = list(csv.DictReader(source))
        writer = csv.DictWriter(target, list(rows[0]))
        writer.writeheader()
        writer.writerows(
            r for r in rows if not (r["relation"] == "subClassOf" and r["subject"] != DS)
        )
    monkeypatch.setattr(term_data, "RELATIONS_FILE", trimmed)
    for cached in (term_data._ontology, term_data.narrower_permissions):
        cached.cache_clear()
    try:
        assert fits([GRU, NCU], [GRU, NPUNCU]).outcome == Outcome.DOES_NOT_FIT
        assert fits([GRU], [HMB]).outcome == Outcome.DOES_NOT_FIT
    finally:
        monkeypatch.undo()
        for cached in (term_data._ontology, term_data.narrower_permissions):
            cached.cache_clear()
    assert fits([GRU], [HMB]).outcome == Outcome.FITS


def test_pickers_offer_a_split_term_as_its_parts() -> None:
    html = str(ConsentFields()["modifiers"])
    offered = {code for code in (NPU, NCU, NPUNCU) if f'value="{code}"' in html}
    assert offered == {NPU, NCU}


# --- Disease-specific consent through the MONDO hierarchy --------------------------------


def test_a_purpose_for_a_subtype_of_the_consented_disease_fits() -> None:
    match = fits(ds(DIABETES), ds(T2D))
    assert match.outcome == Outcome.FITS
    assert "type 2 diabetes mellitus (MONDO:0005148) is a subtype of diabetes" in str(
        match.as_json()["rules"]
    )
    assert fits(ds(T2D), ds(NIDDM1)).outcome == Outcome.FITS  # two levels down, transitively
    assert fits(ds(T2D), ds(T2D)).outcome == Outcome.FITS


def test_a_broader_or_unrelated_disease_does_not_fit() -> None:
    broader = fits(ds(T2D), ds(DIABETES))
    assert broader.outcome == Outcome.DOES_NOT_FIT and T2D in broader.reasons[0]
    assert fits(ds(T2D), ds(CYSTIC_FIBROSIS)).outcome == Outcome.DOES_NOT_FIT
    assert fits(ds(T2D), [HMB]).outcome == Outcome.DOES_NOT_FIT  # HMB is broader than DS
    assert fits([HMB], ds(ASTHMA)).outcome == Outcome.FITS  # DS < HMB


def test_a_consent_may_name_several_diseases() -> None:
    consent = ds(T2D, CYSTIC_FIBROSIS)
    assert fits(consent, ds(CYSTIC_FIBROSIS)).outcome == Outcome.FITS
    assert fits(consent, ds(NIDDM1, CYSTIC_FIBROSIS)).outcome == Outcome.FITS
    both = fits(consent, ds(NIDDM1, DIABETES))
    assert both.outcome == Outcome.DOES_NOT_FIT and len(both.reasons) == 1


def test_a_disease_the_shipped_mondo_cannot_place_needs_review() -> None:
    match = fits(ds(T2D), ds(ASTHMA))
    assert match.outcome == Outcome.NEEDS_REVIEW and match.allowed
    assert "not in the shipped MONDO subset" in match.committee_checks[0]


def test_a_disease_specific_purpose_without_its_disease_cannot_fit_by_itself() -> None:
    purpose = parse_codes([DS], field="purpose", values_required=False)
    match = purpose_fits(codes(*ds(T2D)), purpose, access_days=30)
    assert match.outcome == Outcome.NEEDS_REVIEW


def test_the_shipped_mondo_subset_holds_whole_ancestries() -> None:
    for disease in disease_data.picker():
        for ancestor in disease_data.ancestors(disease.id) or ():
            assert disease_data.disease(ancestor) is not None, (disease.id, ancestor)
    assert DIABETES in (disease_data.ancestors(NIDDM1) or set())


# --- The answer: an outcome, a reason per rule, the matcher version ----------------------


def test_every_rule_answers_with_a_reason_and_the_version_is_stored() -> None:
    answer = fits([GRU, IRB, "DUO:0000028"], [HMB]).as_json()
    assert answer["outcome"] == "does_not_fit" and answer["fits"] is False
    assert answer["matcher_version"] == MATCHER_VERSION
    by_rule = {r["rule"]: r for r in answer["rules"]}
    assert by_rule["permission"]["outcome"] == "fits"
    assert by_rule[IRB]["outcome"] == "does_not_fit" and "IRB" in by_rule[IRB]["reason"]
    assert by_rule["DUO:0000028"]["outcome"] == "needs_review"
    assert all(r["reason"] for r in answer["rules"])


def test_non_commercial_use_must_be_committed_to() -> None:
    consent = [GRU, NCU]
    match = fits(consent, [GRU])
    assert not match.allowed and "NCU" in match.reasons[0]
    assert fits(consent, [GRU, NCU]).allowed


@pytest.mark.parametrize("modifier", [IRB, "DUO:0000019", "DUO:0000016"])
def test_irb_pub_and_gso_are_commitments(modifier: str) -> None:
    assert not fits([GRU, modifier], [GRU]).allowed
    assert fits([GRU, modifier], [GRU, modifier]).allowed


def test_time_limit_bounds_the_access_period() -> None:
    consent = [GRU, {"code": "DUO:0000025", "value": "3"}]
    assert fits(consent, [GRU], access_days=90).allowed
    match = fits(consent, [GRU], access_days=200)
    assert not match.allowed and "3 months" in match.reasons[0]


def test_geographic_restriction_needs_the_region() -> None:
    consent = [GRU, {"code": "DUO:0000022", "value": "EU"}]
    assert not fits(consent, [GRU]).allowed
    assert fits(consent, [GRU, {"code": "DUO:0000022", "value": "EU"}]).allowed


def test_npoa_refuses_ancestry_research() -> None:
    assert not fits([GRU, "DUO:0000044"], [POA]).allowed
    assert fits([GRU, "DUO:0000044"], [HMB]).allowed


def test_clinical_care_use_needs_consent_for_it() -> None:
    assert not fits([HMB], [HMB, CC]).allowed
    assert fits([HMB, CC], [HMB, CC]).allowed


def test_user_project_institution_restrictions_go_to_the_committee() -> None:
    match = fits([GRU, "DUO:0000028"], [GRU])
    assert match.outcome == Outcome.NEEDS_REVIEW and not match.auto_approvable
    assert "IS" in match.committee_checks[0]


def test_a_purpose_needs_exactly_one_permission() -> None:
    assert not fits([GRU], [NCU]).allowed
    assert not fits([GRU], [GRU, HMB]).allowed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["DUO:9999999"], "not a supported"),
        ([DS], "needs a value"),
        ([{"code": DS, "value": "diabetes"}], "needs a value"),
        ([{"code": GRU, "value": "x"}], "takes no value"),
        ([42], "not a DUO code"),
    ],
)
def test_bad_codes_are_refused(raw: list, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_codes(raw, field="duo_codes")
    assert message in caught.value.fields["duo_codes"][0]


def test_only_ds_may_repeat_and_never_with_the_same_disease() -> None:
    assert len(codes(*ds(T2D, CYSTIC_FIBROSIS))) == 2
    for twice in (ds(T2D, T2D), [NCU, NCU]):
        with pytest.raises(ValidationError):
            codes(*twice)
