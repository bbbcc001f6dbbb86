"""Which human reference build a file is aligned to, from contig lengths or names.

Lengths identify a build unambiguously (chr1 is 249,250,621 bp in GRCh37/hg19 and
248,956,422 bp in GRCh38/hg38); header text such as `##reference=` or 23andMe's "build
37" is used when no lengths are given.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# Lengths of a few primary chromosomes, by build (NCBI/GRC assembly reports).
LENGTHS = {
    "GRCh38": {
        "1": 248956422,
        "2": 242193529,
        "3": 198295559,
        "X": 156040895,
        "Y": 57227415,
        "22": 50818468,
    },
    "GRCh37": {
        "1": 249250621,
        "2": 243199373,
        "3": 198022430,
        "X": 155270560,
        "Y": 59373566,
        "22": 51304566,
    },
    "NCBI36": {
        "1": 247249719,
        "2": 242951149,
        "3": 199501827,
        "X": 154913754,
        "Y": 57772954,
        "22": 49691432,
    },
}
_NAME_HINTS = (
    (re.compile(r"grch38|hg38|hs38|b38", re.IGNORECASE), "GRCh38"),
    (re.compile(r"grch37|hg19|hs37|b37|build ?37", re.IGNORECASE), "GRCh37"),
    (re.compile(r"ncbi36|hg18|build ?36", re.IGNORECASE), "NCBI36"),
)
STANDARD_CONTIG = re.compile(r"^(chr)?([0-9]{1,2}|X|Y|M|MT|Un|[0-9XY]{1,2}_\w+)$", re.IGNORECASE)


def canonical(name: str) -> str:
    short = name[3:] if name.lower().startswith("chr") else name
    return "MT" if short.upper() in {"M", "MT"} else short.upper()


def build_from_lengths(contigs: Iterable[tuple[str, int | None]]) -> str | None:
    votes: Counter[str] = Counter()
    for name, length in contigs:
        if length is None:
            continue
        key = canonical(name)
        for build, table in LENGTHS.items():
            if table.get(key) == length:
                votes[build] += 1
    return votes.most_common(1)[0][0] if votes else None


def build_from_text(text: str) -> str | None:
    for pattern, build in _NAME_HINTS:
        if pattern.search(text):
            return build
    return None


def public_lengths(contigs: Iterable[tuple[str, int | None]]) -> dict[str, int]:
    """The declared lengths of the public contigs (public_contigs' rule), name -> bp."""
    return {name: int(length) for name, length in contigs if length and STANDARD_CONTIG.match(name)}


def public_contigs(names: Iterable[str], limit: int = 500) -> list[str]:
    """Contig names safe to publish: standard chromosome-like names only, because free-form
    sequence names (FASTA headers, odd contigs) can name a person or a sample."""
    seen: dict[str, None] = {}
    for name in names:
        if STANDARD_CONTIG.match(name) and name not in seen:
            seen[name] = None
            if len(seen) >= limit:
                break
    return list(seen)
