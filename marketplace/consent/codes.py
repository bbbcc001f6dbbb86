"""DUO codes as clients send them: "DUO:0000042", or {"code": "DUO:0000007", "value":
"MONDO:0005148"} for the codes that take a parameter (disease, region, date, months)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import ValidationError
from marketplace.consent.terms import term

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


@dataclass(frozen=True, order=True)
class ConsentCode:
    code: str
    value: str = ""

    def as_json(self) -> dict[str, str] | str:
        return {"code": self.code, "value": self.value} if self.value else self.code


def parse_codes(raw: Iterable[object], *, field: str) -> list[ConsentCode]:
    """Validate and normalise codes; an unknown code or a missing value is refused."""
    codes: list[ConsentCode] = []
    errors: list[str] = []
    for item in raw:
        if isinstance(item, str):
            code, value = item.strip(), ""
        elif isinstance(item, dict) and isinstance(item.get("code"), str):
            code, value = item["code"].strip(), str(item.get("value") or "").strip()
        else:
            errors.append(f"{item!r} is not a DUO code.")
            continue
        if term(code) is None:
            errors.append(f"{code} is not a supported DUO term.")
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
    if len({c.code for c in codes}) != len(codes):
        raise ValidationError("A DUO code is listed twice.", fields={field: ["Duplicate code."]})
    return sorted(codes)
