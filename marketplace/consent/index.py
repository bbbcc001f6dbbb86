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

Each purpose token of `duo_fits` is also stored signed with exactly what it must commit
to ("DUO:0000006|DUO:0000021,DUO:0000046"), so that one lookup of a purpose's token signed
with each subset of its commitments finds what it fits (a handful of tokens for the usual
purpose with a few commitments).

A purpose fits a dataset exactly when the dataset's `duo_fits` holds one token of each of
`FitQuery.groups` and all of `fits_all`, and its `duo_requires` lies within
`requires_within`: the matcher's rule (matching.purpose_fits, fits or needs review),
which tests/marketplace/test_consent_catalogue.py checks over a grid of consents and
purposes. On PostgreSQL these are GIN-indexed array lookups (&&, @>, and <@ only when the
signed tokens would be too many).
"""

from __future__ import annotations

import itertools
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
# Beyond this many signed tokens a lookup tests the requirements by containment instead.
SIGNED_TOKENS_LIMIT = 512
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
    requires = set(committed(consent))
    if GS in listed:
        requires.add(region_token(listed[GS].value))
    # Each purpose token also signed with exactly what it must commit to: see FitQuery.
    signature = ",".join(sorted(requires))
    fits |= {f"{token}|{signature}" for token in fits}
    if CC in listed:
        fits.add(CC)
    return sorted(fits), sorted(requires)


@dataclass(frozen=True)
class FitQuery:
    """`groups`: for each, the dataset's `duo_fits` must hold one of its tokens (the
    purpose's permission, "*" when it names none, or the tokens a DS disease may match);
    `fits_all`: tokens it must hold all of (clinical care); `requires_within`: what the
    purpose commits to, which must contain the dataset's `duo_requires`."""

    groups: tuple[tuple[str, ...], ...]
    fits_all: tuple[str, ...]
    requires_within: tuple[str, ...]

    def signed_groups(self) -> list[tuple[str, ...]] | None:
        """The groups as signed tokens: one lookup per group finds the datasets whose
        requirements are exactly one subset of `requires_within`, so no separate
        containment test is needed. None when that would take more than
        SIGNED_TOKENS_LIMIT tokens."""
        within = self.requires_within
        widest = max((len(g) for g in self.groups), default=0)
        if widest * 2 ** len(within) > SIGNED_TOKENS_LIMIT:
            return None
        signatures = [
            ",".join(subset)
            for size in range(len(within) + 1)
            for subset in itertools.combinations(within, size)
        ]
        return [
            tuple(sorted(f"{token}|{signature}" for token in g for signature in signatures))
            for g in self.groups
        ]


def purpose_query(purpose: Sequence[ConsentCode]) -> FitQuery:
    """The index lookup for "datasets whose consent this purpose would fit". A purpose
    without a permission asks for any purpose with these commitments; DS without a disease
    asks for any disease-specific research."""
    purpose = current_codes(purpose)
    permissions = {c.code for c in purpose if (t := term(c.code)) and t.is_permission}
    groups: list[tuple[str, ...]] = []
    if not permissions:
        groups.append((ANY_PURPOSE,))
    for permission in sorted(permissions):
        if permission != DS:
            groups.append((permission,))
            continue
        diseases = [c.value for c in purpose if c.code == DS and c.value]
        if not diseases:
            groups.append((DS, UNPLACED_DISEASE))
        for disease in diseases:
            above = ancestors(disease)
            group = {DS, f"{DS}={disease}"}
            group |= {f"{DS}={a}" for a in above} if above is not None else {UNPLACED_DISEASE}
            groups.append(tuple(sorted(group)))
    fits_all = (CC,) if any(c.code == CC for c in purpose) else ()
    within = set(committed(purpose))
    within |= {region_token(c.value) for c in purpose if c.code == GS and c.value}
    return FitQuery(tuple(groups), fits_all, tuple(sorted(within)))
