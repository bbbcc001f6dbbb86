"""Does a research purpose fit a dataset's consent? (GA4GH DUO.)

A dataset's consent is one permission (what research is allowed) plus modifiers
(conditions). A request states one permission as its purpose and lists the modifiers it
commits to. The rules, in order:

- Permissions nest: NRES allows anything; GRU allows HMB, DS and POA research; HMB allows
  HMB and DS research but not ancestry (POA); DS allows research on its named disease;
  POA allows ancestry research only.
- A condition the researcher must take on (NCU, NPU, NPUNCU, IRB, PUB, COL, RTN, MOR,
  GSO, NMDS) fits when the request lists it: listing it is the researcher's commitment.
- GS fits when the request names the same region; TS when the access period is within
  the months allowed; NPOA when the purpose is not ancestry research; a request for
  clinical care use (CC) needs a dataset that allows it.
- US, PS, IS and RS restrict use to approved users, projects, institutions or research
  types: no rule can decide them, so they always go to the committee.

Disease matching is exact on the MONDO id: subtypes would need the MONDO hierarchy,
which is not shipped; a committee can still approve a closer reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from marketplace.consent.codes import ConsentCode
from marketplace.consent.terms import term

NRES, GRU, HMB, DS, POA = (
    "DUO:0000004",
    "DUO:0000042",
    "DUO:0000006",
    "DUO:0000007",
    "DUO:0000011",
)
NMDS, GSO, NPUNCU, PUB, COL, IRB, GS = (
    "DUO:0000015",
    "DUO:0000016",
    "DUO:0000018",
    "DUO:0000019",
    "DUO:0000020",
    "DUO:0000021",
    "DUO:0000022",
)
MOR, TS, US, PS, IS, RTN, RS = (
    "DUO:0000024",
    "DUO:0000025",
    "DUO:0000026",
    "DUO:0000027",
    "DUO:0000028",
    "DUO:0000029",
    "DUO:0000012",
)
CC, NPOA, NPU, NCU = "DUO:0000043", "DUO:0000044", "DUO:0000045", "DUO:0000046"

ALLOWS = {NRES: {GRU, HMB, DS, POA}, GRU: {GRU, HMB, DS, POA}, HMB: {HMB, DS}, DS: {DS}, POA: {POA}}
COMMITMENTS = {NCU, NPU, IRB, PUB, COL, RTN, MOR, GSO, NMDS}
COMMITTEE_ONLY = {US, PS, IS, RS}
DAYS_PER_MONTH = 31


@dataclass(frozen=True)
class Match:
    fits: bool
    reasons: list[str] = field(default_factory=list)  # why it does not fit, in plain words
    committee_checks: list[str] = field(default_factory=list)  # what only people can judge

    @property
    def auto_approvable(self) -> bool:
        return self.fits and not self.committee_checks

    def as_json(self) -> dict[str, object]:
        return {
            "fits": self.fits,
            "reasons": self.reasons,
            "committee_checks": self.committee_checks,
        }


def _name(code: str) -> str:
    found = term(code)
    return f"{found.shorthand} ({found.label})" if found else code


def _permission(codes: Sequence[ConsentCode]) -> ConsentCode | None:
    permissions = [c for c in codes if (t := term(c.code)) is not None and t.is_permission]
    return permissions[0] if len(permissions) == 1 else None


def purpose_fits(
    consent: Sequence[ConsentCode], purpose: Sequence[ConsentCode], *, access_days: int
) -> Match:
    reasons: list[str] = []
    committee: list[str] = []
    allowed = _permission(consent)
    wanted = _permission(purpose)
    listed = {c.code: c for c in purpose}
    if allowed is None:
        reasons.append("The dataset's consent names no single permission; it cannot be matched.")
    if wanted is None:
        reasons.append(
            "State exactly one research purpose (a DUO permission such as GRU, HMB, DS or POA)."
        )
    if allowed and wanted:
        if wanted.code not in ALLOWS.get(allowed.code, set()):
            reasons.append(
                f"The consent allows {_name(allowed.code)}; {_name(wanted.code)} is outside it."
            )
        elif allowed.code == DS and wanted.value != allowed.value:
            reasons.append(
                f"The consent allows research on {allowed.value} only, not on {wanted.value}."
            )
    for condition in consent:
        code = condition.code
        if code in COMMITTEE_ONLY:
            committee.append(f"{_name(code)}: the committee must confirm this use is covered.")
        elif code == NPUNCU:
            if NPUNCU not in listed and not {NPU, NCU} <= set(listed):
                reasons.append(
                    f"The consent requires {_name(NPUNCU)}: commit to "
                    "not-for-profit, non-commercial use."
                )
        elif code in COMMITMENTS and code not in listed:
            reasons.append(
                f"The consent requires {_name(code)}: include it in your purpose to commit to it."
            )
        elif code == GS and listed.get(GS, ConsentCode(GS)).value != condition.value:
            reasons.append(f"The consent limits use to {condition.value}: name that region.")
        elif code == TS and access_days > int(condition.value) * DAYS_PER_MONTH:
            reasons.append(
                f"The consent limits use to {condition.value} months; the access "
                f"period of {access_days} days is longer."
            )
        elif code == NPOA and wanted is not None and wanted.code == POA:
            reasons.append("The consent prohibits ancestry research.")
    if CC in listed and CC not in {c.code for c in consent}:
        reasons.append("The consent does not allow clinical care use.")
    return Match(fits=not reasons, reasons=reasons, committee_checks=committee)
