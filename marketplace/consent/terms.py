"""The DUO terms the marketplace supports and the relations between them, read once from
the shipped extract of the published ontology (marketplace/data/README.md).

Relations (`duo_relations.csv`):
- `subClassOf`: DUO's own axioms. Among permissions a subclass is a narrower use (HMB under
  GRU, DS under HMB). Among modifiers DUO subclasses the terms it split a condition into
  under the condition they came from (NPU and NCU under NPUNCU, EBISPOT/DUO#55), whose
  definition is their conjunction.
- `includedIn`: what DUO states in words rather than axioms (NRES allows every use; GRU
  includes ancestry research, as DUOS matches it), each row quoting its sentence.
- `replacedBy`: an obsolete term's IAO:0100001 "term replaced by" (GRU-CC -> GRU + CC).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
TERMS_FILE = DATA / "duo_terms.csv"
RELATIONS_FILE = DATA / "duo_relations.csv"
# The release the extract was made from (versionIRI of src/ontology/duo.owl).
DUO_RELEASE = "2022-09-15"


@dataclass(frozen=True)
class DuoTerm:
    id: str
    shorthand: str
    # "permission" (what research is allowed), "modifier" (conditions on it) or "obsolete"
    kind: str
    label: str
    description: str

    @property
    def is_permission(self) -> bool:
        return self.kind == "permission"

    @property
    def is_obsolete(self) -> bool:
        return self.kind == "obsolete"


@dataclass(frozen=True)
class _Ontology:
    terms: dict[str, DuoTerm]
    parents: dict[str, frozenset[str]]  # subClassOf and includedIn, one step up
    children: dict[str, frozenset[str]]  # subClassOf only, one step down
    replaced_by: dict[str, tuple[str, ...]]


@lru_cache(maxsize=1)
def _ontology() -> _Ontology:
    with TERMS_FILE.open(newline="") as handle:
        terms = {row["id"]: DuoTerm(**row) for row in csv.DictReader(handle)}
    parents: dict[str, set[str]] = defaultdict(set)
    children: dict[str, set[str]] = defaultdict(set)
    replaced: dict[str, list[str]] = defaultdict(list)
    with RELATIONS_FILE.open(newline="") as handle:
        for row in csv.DictReader(handle):
            subject, relation, obj = row["subject"], row["relation"], row["object"]
            if relation in ("subClassOf", "includedIn"):
                parents[subject].add(obj)
                if relation == "subClassOf":
                    children[obj].add(subject)
            elif relation == "replacedBy":
                replaced[subject].append(obj)
    return _Ontology(
        terms=terms,
        parents={k: frozenset(v) for k, v in parents.items()},
        children={k: frozenset(v) for k, v in children.items()},
        replaced_by={k: tuple(v) for k, v in replaced.items()},
    )


def all_terms() -> list[DuoTerm]:
    """The current (not obsolete) terms, in the order pickers show them."""
    return [t for t in _ontology().terms.values() if not t.is_obsolete]


def term(code: str) -> DuoTerm | None:
    """A current term by id; None for an unknown or obsolete one."""
    found = _ontology().terms.get(code)
    return None if found is None or found.is_obsolete else found


def obsolete_term(code: str) -> DuoTerm | None:
    found = _ontology().terms.get(code)
    return found if found is not None and found.is_obsolete else None


def replacements(code: str) -> tuple[str, ...]:
    """The current terms DUO names as replacing an obsolete one; () when it names none."""
    return _ontology().replaced_by.get(code, ())


def by_shorthand(shorthand: str) -> DuoTerm:
    return next(t for t in all_terms() if t.shorthand == shorthand)


def broader(code: str) -> frozenset[str]:
    """`code` and every term above it (subClassOf or includedIn, transitively)."""
    found, todo = {code}, [code]
    while todo:
        for parent in _ontology().parents.get(todo.pop(), frozenset()):
            if parent not in found:
                found.add(parent)
                todo.append(parent)
    return frozenset(found)


@lru_cache(maxsize=64)
def narrower_permissions(code: str) -> frozenset[str]:
    """The purpose permissions a consent permission allows: itself and every permission
    below it. NRES -> all five; GRU -> GRU, HMB, DS, POA; HMB -> HMB, DS."""
    return frozenset(t.id for t in all_terms() if t.is_permission and code in broader(t.id))


def parts(code: str) -> frozenset[str]:
    """What committing to a modifier commits to (modifiers only: among permissions a
    subclass is a narrower use, not a part): the leaves it was split into (NPUNCU ->
    NPU, NCU), or the modifier itself when DUO has not split it."""
    below = _ontology().children.get(code, frozenset())
    if not below:
        return frozenset({code})
    return frozenset().union(*(parts(child) for child in below))
