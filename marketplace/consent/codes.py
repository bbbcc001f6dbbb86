"""DUO codes as clients send them: "DUO:0000042", or {"code": "DUO:0000007", "value":
"MONDO:0005148"} for the codes that take a parameter (disease, region, date, months).

DS may be given several times, once per disease: a consent may name several diseases, and
a purpose may study several. An obsolete term is read as the terms DUO replaced it with
(GRU-CC -> GRU + CC); one DUO replaced by nothing is refused, saying so."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import ValidationError
from marketplace.consent.terms import obsolete_term, replacements, term

# Terms whose meaning needs a value, and what the value is.
PARAMETERS = {
    "DUO:0000007": "a disease, as a MONDO id (e.g. MONDO:0005148)",
    "DUO:0000022": "a geographic region (e.g. EU)",
    "DUO:0000024": "a date (YYYY-MM-DD) before which results may not be published",
    "DUO:0000025": "a number of months",
}
_VALUE_RULES = {
    "DUO:0000007": re.compile(r"^MONDO:\d{7}$"),
    "DUO:0000022": re.compile(r"^[A-Za-z][A-Za-z -]{1,63}$"),
    "DUO:0000024": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "DUO:0000025": re.compile(r"^[1-9]\d{0,2}$"),
}
# The one parameterised term that may repeat, with different values.
REPEATABLE = {"DUO:0000007"}


@dataclass(frozen=True, order=True)
class ConsentCode:
    code: str
    value: str = ""

    def as_json(self) -> dict[str, str] | str:
        return {"code": self.code, "value": self.value} if self.value else self.code


def _expand_obsolete(code: str, value: str, errors: list[str]) -> list[tuple[str, str]]:
    old = obsolete_term(code)
    if old is None:
        return [(code, value)]
    new = replacements(code)
    if not new:
        errors.append(f"{code} ({old.shorthand}) is obsolete in DUO and has no replacement.")
    return [(replacement, "") for replacement in new]


def parse_codes(
    raw: Iterable[object], *, field: str, values_required: bool = True
) -> list[ConsentCode]:
    """Validate and normalise codes into a sorted list; an unknown code, a missing or
    malformed value, or a code given twice raises ValidationError with the field's
    messages. `values_required=False` lets a catalogue filter name DS without a disease
    ("any disease")."""
    codes: list[ConsentCode] = []
    errors: list[str] = []
    pairs: list[tuple[str, str]] = []
    for item in raw:
        if isinstance(item, str):
            code, value = item.strip(), ""
        elif isinstance(item, dict) and isinstance(item.get("code"), str):
            code, value = item["code"].strip(), str(item.get("value") or "").strip()
        else:
            errors.append(f"{item!r} is not a DUO code.")
            continue
        pairs.extend(_expand_obsolete(code, value, errors))
    for code, value in pairs:
        if term(code) is None:
            if obsolete_term(code) is None:
                errors.append(f"{code} is not a supported DUO term.")
            continue
        if code in PARAMETERS and not value and not values_required:
            codes.append(ConsentCode(code, ""))
            continue
        if code in PARAMETERS and not _VALUE_RULES[code].match(value):
            errors.append(f"{code} needs a value: {PARAMETERS[code]}.")
            continue
        if code not in PARAMETERS and value:
            errors.append(f"{code} takes no value.")
            continue
        codes.append(ConsentCode(code, value))
    if errors:
        raise ValidationError("Some consent codes are not valid.", fields={field: errors})
    single = [c.code for c in codes if c.code not in REPEATABLE]
    if len(set(single)) != len(single) or len(set(codes)) != len(codes):
        raise ValidationError("A DUO code is listed twice.", fields={field: ["Duplicate code."]})
    return sorted(codes)


def parse_purpose_filter(raw: Iterable[str], *, field: str) -> tuple[ConsentCode, ...]:
    """A catalogue filter's purpose from query-string values: each "DUO:0000006" or
    "DUO:0000007=MONDO:0005148" (code=value), repeated or comma-separated. At most one
    permission (DS may repeat, one disease each); DS may omit its disease ("any disease").
    Raises ValidationError on `field`."""
    items: list[object] = []
    for entry in raw:
        for piece in (p.strip() for p in entry.split(",")):
            if not piece:
                continue
            code, _, value = piece.partition("=")
            if not re.fullmatch(r"DUO:\d{7}", code.strip()):
                raise ValidationError(
                    "The consent filter takes DUO codes.",
                    fields={field: [f'"{piece}" is not a DUO code such as DUO:0000006.']},
                )
            items.append({"code": code.strip(), "value": value.strip()})
    codes = parse_codes(items, field=field, values_required=False)
    permissions = {c.code for c in codes if (t := term(c.code)) is not None and t.is_permission}
    if len(permissions) > 1:
        raise ValidationError(
            "State one research purpose.",
            fields={field: ["At most one DUO permission (NRES, GRU, HMB, DS or POA)."]},
        )
    return tuple(codes)
