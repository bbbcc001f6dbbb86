"""Does a research purpose fit a dataset's consent? (GA4GH DUO; DESIGN "Consent: what 'a
dataset allows a purpose' means".)

A consent is one permission (what research is allowed; DS may name several diseases) plus
modifiers (conditions). A purpose states one permission (DS with one or more diseases) and
lists the modifiers the researcher commits to. The answer is **fits**, **needs review**
(allowed, but people must judge part of it) or **does not fit**, with one line per rule:

- Permission: the purpose's permission must be the consent's or below it in DUO (its
  subClassOf axioms, and what DUO states in words: NRES allows all, GRU includes
  ancestry research); all from `duo_relations.csv`, none written here.
- Disease (DS consent, as Broad's DUOS matches it): each disease of the purpose must be a
  consented disease or a MONDO subtype of one. A disease outside the shipped MONDO subset
  cannot be placed, so it needs review rather than being refused.
- Conditions to commit to (NCU, NPU, NPUNCU, IRB, PUB, COL, RTN, MOR, GSO, NMDS) fit when the
  purpose lists them. A term DUO split (NPUNCU into NPU and NCU) stands for its parts both
  ways: committing to NPUNCU commits to NPU and NCU; committing to both meets NPUNCU.
- GS needs the same region; TS bounds the access period; NPOA refuses ancestry research;
  a clinical-care purpose (CC) needs a consent that lists CC.
- US, PS, IS and RS (approved users, projects, institutions, research types) only people
  can judge: they need review.

Obsolete codes are read as the terms DUO replaced them with (GRU-CC -> GRU + CC).
`MATCHER_VERSION` names these rules and the data releases; it is stored with every
decision (AccessRequest.consent_matcher_version) so a decision can be traced to the rules
that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from marketplace.consent.codes import ConsentCode
from marketplace.consent.diseases import MONDO_RELEASE, ancestors, disease_name
from marketplace.consent.terms import DUO_RELEASE, obsolete_term, parts, replacements, term
from marketplace.consent.terms import narrower_permissions as allowed_purposes

RULES_VERSION = "2"
MATCHER_VERSION = f"{RULES_VERSION}+duo.{DUO_RELEASE}+mondo.{MONDO_RELEASE}"

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

# Conditions the researcher takes on by listing them (the parts of a split term follow
# from the ontology: `parts`).
COMMITMENTS = frozenset({NPUNCU, NCU, NPU, IRB, PUB, COL, RTN, MOR, GSO, NMDS})
COMMITTEE_ONLY = frozenset({US, PS, IS, RS})
DAYS_PER_MONTH = 31


class Outcome(StrEnum):
    FITS = "fits"
    NEEDS_REVIEW = "needs_review"
    DOES_NOT_FIT = "does_not_fit"


@dataclass(frozen=True)
class Rule:
    """One rule's answer: `rule` names it ("permission", "disease" or a DUO id)."""

    rule: str
    outcome: Outcome
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"rule": self.rule, "outcome": self.outcome.value, "reason": self.reason}


@dataclass(frozen=True)
class Match:
    rules: list[Rule] = field(default_factory=list)
    version: str = MATCHER_VERSION

    @property
    def outcome(self) -> Outcome:
        found = {r.outcome for r in self.rules}
        for worst in (Outcome.DOES_NOT_FIT, Outcome.NEEDS_REVIEW):
            if worst in found:
                return worst
        return Outcome.FITS

    @property
    def allowed(self) -> bool:
        """Fits or needs review: what "a dataset allows a purpose" means (DESIGN)."""
        return self.outcome != Outcome.DOES_NOT_FIT

    @property
    def auto_approvable(self) -> bool:
        return self.outcome == Outcome.FITS

    @property
    def reasons(self) -> list[str]:
        """Why it does not fit, in plain words."""
        return [r.reason for r in self.rules if r.outcome == Outcome.DOES_NOT_FIT]

    @property
    def committee_checks(self) -> list[str]:
        """What only people can judge."""
        return [r.reason for r in self.rules if r.outcome == Outcome.NEEDS_REVIEW]

    def as_json(self) -> dict[str, object]:
        """What is stored with a request. `fits` is kept as it was stored before outcomes
        existed: true when allowed (fits or needs review)."""
        return {
            "outcome": self.outcome.value,
            "fits": self.allowed,
            "reasons": self.reasons,
            "committee_checks": self.committee_checks,
            "rules": [r.as_json() for r in self.rules],
            "matcher_version": self.version,
        }


def _name(code: str) -> str:
    found = term(code) or obsolete_term(code)
    return f"{found.shorthand} ({found.label})" if found else code


def current_codes(codes: Sequence[ConsentCode]) -> list[ConsentCode]:
    """Stored codes with obsolete terms read as their replacements."""
    out: list[ConsentCode] = []
    for code in codes:
        if obsolete_term(code.code) is not None:
            out.extend(ConsentCode(new) for new in replacements(code.code))
        else:
            out.append(code)
    return out


def _permission(codes: Sequence[ConsentCode]) -> tuple[str, list[str]] | None:
    """The single permission and its values (DS diseases); None if there is not exactly
    one permission."""
    found = {c.code for c in codes if (t := term(c.code)) is not None and t.is_permission}
    if len(found) != 1:
        return None
    code = found.pop()
    return code, sorted(c.value for c in codes if c.code == code and c.value)


def committed(codes: Sequence[ConsentCode]) -> frozenset[str]:
    """The conditions a purpose commits to, each split term replaced by its parts."""
    listed = [c.code for c in codes if c.code in COMMITMENTS or _is_part(c.code)]
    return frozenset().union(*(parts(code) for code in listed)) if listed else frozenset()


def _is_part(code: str) -> bool:
    return any(code in parts(parent) for parent in COMMITMENTS)


def _disease_rules(consented: list[str], studied: list[str]) -> list[Rule]:
    rules = []
    allowed = ", ".join(disease_name(d) for d in consented)
    for wanted in studied:
        above = ancestors(wanted)
        if wanted in consented:
            rules.append(Rule("disease", Outcome.FITS, f"{disease_name(wanted)} is consented."))
        elif above is None:
            rules.append(
                Rule(
                    "disease",
                    Outcome.NEEDS_REVIEW,
                    f"{wanted} is not in the shipped MONDO subset ({MONDO_RELEASE}): the "
                    f"committee must judge whether it falls under {allowed}.",
                )
            )
        elif hits := sorted(above & set(consented)):
            rules.append(
                Rule(
                    "disease",
                    Outcome.FITS,
                    f"{disease_name(wanted)} is a subtype of {disease_name(hits[0])} in MONDO.",
                )
            )
        else:
            rules.append(
                Rule(
                    "disease",
                    Outcome.DOES_NOT_FIT,
                    f"The consent allows research on {allowed} only; {disease_name(wanted)} "
                    "is neither of them nor a subtype in MONDO.",
                )
            )
    return rules


def _permission_rules(
    consent: tuple[str, list[str]] | None, purpose: tuple[str, list[str]] | None
) -> list[Rule]:
    rules = []
    if consent is None:
        rules.append(
            Rule(
                "permission",
                Outcome.DOES_NOT_FIT,
                "The dataset's consent names no single permission; it cannot be matched.",
            )
        )
    if purpose is None:
        rules.append(
            Rule(
                "permission",
                Outcome.DOES_NOT_FIT,
                "State exactly one research purpose (a DUO permission such as GRU, HMB, DS or "
                "POA).",
            )
        )
    if consent is None or purpose is None:
        return rules
    (allowed, diseases), (wanted, studied) = consent, purpose
    if wanted not in allowed_purposes(allowed):
        rules.append(
            Rule(
                "permission",
                Outcome.DOES_NOT_FIT,
                f"The consent allows {_name(allowed)}; {_name(wanted)} is outside it.",
            )
        )
        return rules
    rules.append(
        Rule(
            "permission",
            Outcome.FITS,
            f"{_name(wanted)} is within {_name(allowed)}."
            if wanted != allowed
            else f"The consent allows {_name(allowed)}.",
        )
    )
    if allowed == DS and not studied:
        rules.append(
            Rule("disease", Outcome.NEEDS_REVIEW, "Name the disease the research is about.")
        )
    elif allowed == DS:
        rules.extend(_disease_rules(diseases, studied))
    return rules


def purpose_fits(
    consent: Sequence[ConsentCode], purpose: Sequence[ConsentCode], *, access_days: int
) -> Match:
    """Match a purpose against a consent (both as parse_codes returns them); `access_days`
    is the dataset's access period, which TS bounds. Never raises: what cannot be matched is
    a rule that does not fit."""
    consent, purpose = current_codes(consent), current_codes(purpose)
    allowed, wanted = _permission(consent), _permission(purpose)
    rules = _permission_rules(allowed, wanted)
    listed = {c.code: c for c in purpose}
    promised = committed(purpose)
    for condition in consent:
        code = condition.code
        if code in COMMITTEE_ONLY:
            rules.append(
                Rule(
                    code,
                    Outcome.NEEDS_REVIEW,
                    f"{_name(code)}: the committee must confirm this use is covered.",
                )
            )
        elif code in COMMITMENTS:
            missing = sorted(parts(code) - promised)
            if missing:
                rules.append(
                    Rule(
                        code,
                        Outcome.DOES_NOT_FIT,
                        f"The consent requires {_name(code)}: include "
                        + " and ".join(_name(m) for m in missing)
                        + " in your purpose to commit to it.",
                    )
                )
            else:
                rules.append(Rule(code, Outcome.FITS, f"You commit to {_name(code)}."))
        elif code == GS:
            named = listed.get(GS, ConsentCode(GS)).value
            if named.casefold() != condition.value.casefold():
                rules.append(
                    Rule(
                        code,
                        Outcome.DOES_NOT_FIT,
                        f"The consent limits use to {condition.value}: name that region.",
                    )
                )
            else:
                rules.append(Rule(code, Outcome.FITS, f"Use stays within {condition.value}."))
        elif code == TS:
            if access_days > int(condition.value) * DAYS_PER_MONTH:
                rules.append(
                    Rule(
                        code,
                        Outcome.DOES_NOT_FIT,
                        f"The consent limits use to {condition.value} months; the access "
                        f"period of {access_days} days is longer.",
                    )
                )
            else:
                rules.append(
                    Rule(code, Outcome.FITS, f"{access_days} days are within the time limit.")
                )
        elif code == NPOA and wanted is not None:
            if wanted[0] == POA:
                rules.append(
                    Rule(code, Outcome.DOES_NOT_FIT, "The consent prohibits ancestry research.")
                )
            else:
                rules.append(Rule(code, Outcome.FITS, "The purpose is not ancestry research."))
    if CC in listed:
        if CC in {c.code for c in consent}:
            rules.append(Rule(CC, Outcome.FITS, "The consent allows clinical care use."))
        else:
            rules.append(
                Rule(CC, Outcome.DOES_NOT_FIT, "The consent does not allow clinical care use.")
            )
    return Match(rules=rules)


def conditions_to_commit(consent: Sequence[ConsentCode]) -> list[ConsentCode]:
    """What a purpose must list to meet the consent's conditions, as the request form
    pre-selects them (issue 16 §7): each condition to commit to (a split term as its parts,
    the form's checkboxes) with the consent's value, and GS with its region. Conditions
    only people judge (US, PS, IS, RS), TS and NPOA ask nothing of the purpose."""
    found: dict[str, ConsentCode] = {}
    for condition in current_codes(consent):
        if condition.code in COMMITMENTS:
            for part in sorted(parts(condition.code)):
                found.setdefault(part, ConsentCode(part, condition.value))
        elif condition.code == GS:
            found.setdefault(GS, condition)
    return list(found.values())
