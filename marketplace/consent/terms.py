"""The DUO terms the marketplace supports, read once from the shipped CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TERMS_FILE = Path(__file__).resolve().parent.parent / "data" / "duo_terms.csv"


@dataclass(frozen=True)
class DuoTerm:
    id: str
    shorthand: str
    kind: str  # "permission" (what research is allowed) or "modifier" (conditions on it)
    label: str
    description: str

    @property
    def is_permission(self) -> bool:
        return self.kind == "permission"


@lru_cache(maxsize=1)
def _terms() -> dict[str, DuoTerm]:
    with TERMS_FILE.open(newline="") as handle:
        return {row["id"]: DuoTerm(**row) for row in csv.DictReader(handle)}


def all_terms() -> list[DuoTerm]:
    return list(_terms().values())


def term(code: str) -> DuoTerm | None:
    return _terms().get(code)


def by_shorthand(shorthand: str) -> DuoTerm:
    return next(t for t in _terms().values() if t.shorthand == shorthand)
