"""The catalogue's consent filter as index lookups: per dataset, the purposes that fit,
precomputed (DESIGN "Consent": searches precompute the purposes that fit).

A dataset stores two token lists, recomputed whenever its listing is saved
(Dataset.save):

- `duo_fits`: the purpose permissions its consent allows (the DUO lattice is small):
  "DUO:0000006" for HMB...; for DS, "DUO:0000007" when any disease fits (GRU, HMB, NRES),
  or "DUO:0000007=MONDO:…" per consented disease plus "DUO:0000007=?" (a disease the
  shipped MONDO subset cannot place, which needs review); "DUO:0000043" when clinical care
  is allowed; "*" when any purpose at all can fit (a TS shorter than the access period, or
  a consent without a permission, leaves the list empty).
- `duo_requires`: what a purpose must commit to: each condition's parts (NPUNCU -> NPU,
  NCU) and "DUO:0000022=<region>" for GS.

A purpose fits a dataset exactly when the dataset's `duo_fits` holds every token of
`FitQuery.fits_all`, one token of each group of `fits_any`, and its `duo_requires` lies
within `requires_within`: the matcher's rule (matching.purpose_fits, fits or needs
review), which tests/marketplace/test_consent_catalogue.py checks over a grid of consents
and purposes. On PostgreSQL these are GIN-indexed array operators (@>, &&, <@).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from marketplace.consent.codes import ConsentCode
from marketplace.consent.diseases import ancestors
from marketplace.consent.matching import (
    CC,
    COMMITMENTS,
    DAYS_PER_MONTH,
    DS,
    GS,
    NPOA,
    POA,
    TS,
    committed,
    current_codes,
)
from marketplace.consent.terms import narrower_permissions, parts, term

ANY_PURPOSE = "*"
UNPLACED_DISEASE = f"{DS}=?"
# Every token `duo_requires` can hold apart from regions: the portable filter tests each.
REQUIREMENT_VOCABULARY = tuple(sorted(frozenset().union(*(parts(c) for c in COMMITMENTS))))


def region_token(region: str) -> str:
    """GS values allow letters, spaces and hyphens: casefolded with "_" for spaces, they
    make one token and compare as the matcher compares them."""
    return f"{GS}={region.casefold().replace(' ', '_')}"


def consent_tokens(
    consent: Sequence[ConsentCode], *, access_days: int
) -> tuple[list[str], list[str]]:
    """(duo_fits, duo_requires) for a dataset's consent codes and access period."""
    consent = current_codes(consent)
    permissions = {c.code for c in consent if (t := term(c.code)) and t.is_permission}
    listed = {c.code: c for c in consent}
    if len(permissions) != 1:
        return [], []
    months = listed[TS].value if TS in listed else ""
    if TS in listed and (not months.isdigit() or access_days > int(months) * DAYS_PER_MONTH):
        return [], []
    allowed = permissions.pop()
    fits = {ANY_PURPOSE}
    for purpose in narrower_permissions(allowed):
        if purpose == DS and allowed == DS:
            consented = {f"{DS}={c.value}" for c in consent if c.code == DS and c.value}
            fits |= consented | {UNPLACED_DISEASE}
        elif not (purpose == POA and NPOA in listed):
            fits.add(purpose)
    if CC in listed:
        fits.add(CC)
    requires = set(committed(consent))
    if GS in listed:
        requires.add(region_token(listed[GS].value))
    return sorted(fits), sorted(requires)


@dataclass(frozen=True)
class FitQuery:
    fits_all: tuple[str, ...]
    fits_any: tuple[tuple[str, ...], ...]
    requires_within: tuple[str, ...]


def purpose_query(purpose: Sequence[ConsentCode]) -> FitQuery:
    """The index lookup for "datasets whose consent this purpose would fit". A purpose
    without a permission asks for any purpose with these commitments; DS without a disease
    asks for any disease-specific research."""
    purpose = current_codes(purpose)
    permissions = {c.code for c in purpose if (t := term(c.code)) and t.is_permission}
    fits_all: list[str] = []
    fits_any: list[tuple[str, ...]] = []
    if not permissions:
        fits_all.append(ANY_PURPOSE)
    for permission in sorted(permissions):
        if permission != DS:
            fits_all.append(permission)
            continue
        diseases = [c.value for c in purpose if c.code == DS and c.value]
        if not diseases:
            fits_any.append((DS, UNPLACED_DISEASE))
        for disease in diseases:
            above = ancestors(disease)
            group = {DS, f"{DS}={disease}"}
            group |= {f"{DS}={a}" for a in above} if above is not None else {UNPLACED_DISEASE}
            fits_any.append(tuple(sorted(group)))
    if any(c.code == CC for c in purpose):
        fits_all.append(CC)
    within = set(committed(purpose))
    within |= {region_token(c.value) for c in purpose if c.code == GS and c.value}
    return FitQuery(tuple(fits_all), tuple(fits_any), tuple(sorted(within)))
