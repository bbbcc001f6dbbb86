"""Diseases for disease-specific consent (DUO:0000007, DS), from the shipped MONDO subset.

`marketplace/data/mondo_subset.csv` holds the DS picker's diseases, all their subtypes and
every ancestor of those, each with all its MONDO superclasses (marketplace/data/README.md).
A disease in the file therefore has a complete ancestry: whether it falls under another
disease is decided. A disease outside the file is valid MONDO but undecided: the matcher
sends it to the committee rather than refusing it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from marketplace.consent.terms import DATA

MONDO_FILE = DATA / "mondo_subset.csv"
# MONDO release the subset was cut from (subsets/mondo-rare_edges.tsv and the SSSOM labels).
MONDO_RELEASE = "2026-08-04"


@dataclass(frozen=True)
class Disease:
    id: str
    label: str
    parents: tuple[str, ...]
    in_picker: bool


@lru_cache(maxsize=1)
def _diseases() -> dict[str, Disease]:
    with MONDO_FILE.open(newline="") as handle:
        return {
            row["id"]: Disease(
                id=row["id"],
                label=row["label"],
                parents=tuple(row["parents"].split()),
                in_picker=row["picker"] == "yes",
            )
            for row in csv.DictReader(handle)
        }


def disease(mondo_id: str) -> Disease | None:
    return _diseases().get(mondo_id)


def disease_name(mondo_id: str) -> str:
    """ "type 2 diabetes mellitus (MONDO:0005148)", or the bare id when it is not shipped."""
    found = disease(mondo_id)
    return f"{found.label} ({mondo_id})" if found and found.label else mondo_id


def picker() -> list[Disease]:
    return sorted((d for d in _diseases().values() if d.in_picker), key=lambda d: d.label)


@lru_cache(maxsize=4096)
def ancestors(mondo_id: str) -> frozenset[str] | None:
    """Every superclass of the disease, transitively (not itself); None when the disease is
    not in the shipped subset, so its ancestry is unknown."""
    if mondo_id not in _diseases():
        return None
    found: set[str] = set()
    todo = [mondo_id]
    while todo:
        current = _diseases().get(todo.pop())
        for parent in current.parents if current else ():
            if parent not in found:
                found.add(parent)
                todo.append(parent)
    return frozenset(found)
