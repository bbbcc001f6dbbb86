"""Make the consent matcher's ontology extracts in marketplace/data/ from the published files.

    python scripts/extract_consent_ontologies.py duo PATH/TO/duo.owl
    python scripts/extract_consent_ontologies.py mondo EDGES.tsv LABELS.sssom.tsv...

`duo` reads the official DUO OWL release (EBISPOT/DUO, `src/ontology/duo.owl`) and writes
`duo_terms.csv` (every current permission and modifier, plus the obsolete terms that have a
shorthand) and `duo_relations.csv` (the rdfs:subClassOf axioms among them and the
IAO:0100001 "term replaced by" annotations of obsolete terms, then the few relations DUO
states in words rather than axioms, each with the sentence it comes from).

`mondo` reads MONDO's subclass edges (`subsets/mondo-rare_edges.tsv` of a MONDO release:
the rare-disease module, which holds every ancestor of a rare disease with all their
superclass axioms) and the labels of its SSSOM mapping files, and writes
`mondo_subset.csv`: the diseases of the DS picker (PICKER below) and the tests, every
subtype of them, and every ancestor of all of those, so that each disease in the file has
its complete list of superclasses.
"""

from __future__ import annotations

import csv
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "marketplace" / "data"
NS = {
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "obo": "http://purl.obolibrary.org/obo/",
    "oboInOwl": "http://www.geneontology.org/formats/oboInOwl#",
}
RESOURCE = f"{{{NS['rdf']}}}resource"
PERMISSION, MODIFIER = "DUO:0000001", "DUO:0000017"

# What DUO says in its definitions and documentation rather than in axioms. Each is quoted
# so that a reader can check it against the release.
STATED_IN_WORDS = [
    (
        "DUO:0000042",
        "includedIn",
        "DUO:0000004",
        "NRES definition: 'there is no restriction on use'",
    ),
    (
        "DUO:0000011",
        "includedIn",
        "DUO:0000004",
        "NRES definition: 'there is no restriction on use'",
    ),
    (
        "DUO:0000011",
        "includedIn",
        "DUO:0000042",
        "GRU rdfs:comment: 'This includes but is not limited to: ... the study of population "
        "origins or ancestry'; DUO README, Research Purpose to Query (DUOS): 'Study "
        "population origins or ancestry: any dataset tagged with GRU'",
    ),
]

# The diseases the DS picker offers (and the tests use): common targets of genomic studies
# that MONDO's rare-disease module covers with their whole subtree.
PICKER = [
    "MONDO:0005015",  # diabetes mellitus
    "MONDO:0005148",  # type 2 diabetes mellitus
    "MONDO:0009061",  # cystic fibrosis
    "MONDO:0007254",  # breast cancer
    "MONDO:0005105",  # melanoma
    "MONDO:0004975",  # Alzheimer disease
    "MONDO:0005180",  # Parkinson disease
    "MONDO:0005090",  # schizophrenia
    "MONDO:0005045",  # hypertrophic cardiomyopathy
    "MONDO:0005027",  # epilepsy
]


def _curie(element: ET.Element) -> str:
    found = element.find("oboInOwl:id", NS)
    return found.text.strip() if found is not None and found.text else ""


def _iri_curie(iri: str) -> str:
    tail = iri.rsplit("/", 1)[-1]
    return tail.replace("_", ":", 1) if tail.startswith("DUO_") else ""


def extract_duo(owl_path: Path) -> None:
    root = ET.parse(owl_path).getroot()  # noqa: S314 - the published release file
    version_element = root.find("owl:Ontology/owl:versionIRI", NS)
    version = version_element.get(RESOURCE, "") if version_element is not None else ""
    classes: dict[str, ET.Element] = {}
    iri_to_id: dict[str, str] = {}
    for element in root.findall("owl:Class", NS):
        curie = _curie(element)
        if curie.startswith("DUO:"):
            classes[curie] = element
            iri_to_id[_iri_curie(element.get(f"{{{NS['rdf']}}}about", ""))] = curie
    parents: dict[str, list[str]] = {}
    for curie, element in classes.items():
        named = [
            iri_to_id.get(_iri_curie(s.get(RESOURCE, "")), _iri_curie(s.get(RESOURCE, "")))
            for s in element.findall("rdfs:subClassOf", NS)
            if s.get(RESOURCE)
        ]
        parents[curie] = [p for p in named if p]

    def kind(curie: str) -> str:
        seen, todo = set(), list(parents.get(curie, []))
        while todo:
            parent = todo.pop()
            if parent in (PERMISSION, MODIFIER):
                return "permission" if parent == PERMISSION else "modifier"
            if parent not in seen:
                seen.add(parent)
                todo.extend(parents.get(parent, []))
        return ""

    def text(element: ET.Element, tag: str) -> str:
        found = element.find(tag, NS)
        return " ".join((found.text or "").split()) if found is not None else ""

    rows, relations = [], []
    for curie, element in sorted(classes.items()):
        shorthand = text(element, "oboInOwl:shorthand")
        obsolete = any(s.get(RESOURCE, "").endswith("#ObsoleteClass") for s in element) or (
            text(element, "owl:deprecated") == "true"
        )
        term_kind = "obsolete" if obsolete else kind(curie)
        if not shorthand or not term_kind:
            continue  # the grouping classes and the unused OBI-style placeholders
        rows.append(
            {
                "id": curie,
                "shorthand": shorthand,
                "kind": term_kind,
                "label": text(element, "rdfs:label").removeprefix("obsolete "),
                "description": text(element, "obo:IAO_0000115"),
            }
        )
        for parent in parents[curie]:
            if parent not in (PERMISSION, MODIFIER) and parent in classes:
                relations.append((curie, "subClassOf", parent, "rdfs:subClassOf axiom"))
        for replacement in re.findall(r"DUO_(\d{7})", text(element, "obo:IAO_0100001")):
            relations.append(
                (curie, "replacedBy", f"DUO:{replacement}", "IAO:0100001 term replaced by")
            )
    relations.extend(STATED_IN_WORDS)
    # Keep the order people see in the pickers (permissions broadest first) across updates.
    with (DATA / "duo_terms.csv").open(newline="") as handle:
        order = [row["id"] for row in csv.DictReader(handle)]
    rows.sort(key=lambda row: order.index(row["id"]) if row["id"] in order else len(order))
    with (DATA / "duo_terms.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, ["id", "shorthand", "kind", "label", "description"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    with (DATA / "duo_relations.csv").open("w", newline="") as handle:
        writer_rel = csv.writer(handle, lineterminator="\n")
        writer_rel.writerow(["subject", "relation", "object", "source"])
        writer_rel.writerows(relations)
    print(f"DUO {version}: {len(rows)} terms, {len(relations)} relations")


def extract_mondo(edges_path: Path, label_paths: list[Path]) -> None:
    parents: dict[str, set[str]] = defaultdict(set)
    children: dict[str, set[str]] = defaultdict(set)
    with edges_path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            subject, parent = row["subject"], row["object"]
            if row["relation"] == "rdfs:subClassOf" and parent.startswith("MONDO:"):
                parents[subject].add(parent)
                children[parent].add(subject)
    labels: dict[str, str] = {}
    for path in label_paths:
        with path.open(newline="") as handle:
            lines = (line for line in handle if not line.startswith("#"))
            for row in csv.DictReader(lines, delimiter="\t"):
                if row.get("subject_id", "").startswith("MONDO:") and row.get("subject_label"):
                    labels.setdefault(row["subject_id"], row["subject_label"])

    def closure(start: str, graph: dict[str, set[str]]) -> set[str]:
        found: set[str] = set()
        todo = [start]
        while todo:
            for other in graph.get(todo.pop(), set()):
                if other not in found:
                    found.add(other)
                    todo.append(other)
        return found

    wanted: set[str] = set()
    for seed in PICKER:
        wanted |= {seed} | closure(seed, children)
    for disease in list(wanted):
        wanted |= closure(disease, parents)
    with (DATA / "mondo_subset.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "label", "parents", "picker"])
        for disease in sorted(wanted):
            writer.writerow(
                [
                    disease,
                    labels.get(disease, ""),
                    " ".join(sorted(parents.get(disease, set()))),
                    "yes" if disease in PICKER else "",
                ]
            )
    print(f"MONDO subset: {len(wanted)} diseases")


if __name__ == "__main__":
    if sys.argv[1:2] == ["duo"]:
        extract_duo(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["mondo"]:
        extract_mondo(Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])
    else:
        sys.exit(__doc__)
