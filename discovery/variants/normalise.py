"""Allele normalisation without the reference sequence, so the same variant written two
ways in two VCFs becomes one key (issue 18 §1).

What is done (the reference-free steps of Tan, Abecasis & Kang 2015, "Unified
representation of genetic variants", as `bcftools norm -m-` does without `-f`):
multi-allelic records are split into one row per ALT; bases are upper-cased; bases shared
at the right end of REF and ALT are trimmed, then at the left end (moving POS right),
each keeping at least one base. What is not done: left-alignment of indels in repeats
(it needs the reference FASTA), so an indel in a homopolymer or tandem repeat written at
different positions by two callers does not match (README "Variant index").

Chromosomes get a small code (1-22, X=23, Y=24, MT=25; a "chr" prefix is ignored);
other contigs (alt, decoy, unplaced) are not indexed. Alleles longer than
`MAX_ALLELE_CHARS` are stored as a SHA-256 digest prefix, which still matches exactly.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MAX_ALLELE_CHARS = 32
DIGEST_PREFIX = "#"
_BASES = re.compile(r"^[ACGTN]+$")
_CHROMS = {str(n): n for n in range(1, 23)} | {"X": 23, "Y": 24, "M": 25, "MT": 25}
CHROM_NAMES = {code: name for name, code in _CHROMS.items() if name != "M"}

SNP, MNP, INS, DEL, INDEL = 1, 2, 3, 4, 5
KIND_NAMES = {SNP: "SNP", MNP: "MNP", INS: "INS", DEL: "DEL", INDEL: "INDEL"}


@dataclass(frozen=True)
class Allele:
    chrom: int
    pos: int  # 1-based, as VCF POS, after trimming
    ref: str  # stored form (digest when long)
    alt: str
    kind: int


def chrom_code(name: str) -> int | None:
    """1..25 for the primary assembly's chromosomes, None for any other contig."""
    bare = name.strip()
    if bare[:3].lower() == "chr":
        bare = bare[3:]
    return _CHROMS.get(bare.upper())


def stored_allele(bases: str) -> str:
    """The column value for already-normalised bases: themselves, or, when longer than
    MAX_ALLELE_CHARS, "#<length>:" and a SHA-256 prefix (32 characters in all), so range
    queries still know how far a long deletion reaches."""
    if len(bases) <= MAX_ALLELE_CHARS:
        return bases
    head = f"{DIGEST_PREFIX}{len(bases)}:"
    return head + hashlib.sha256(bases.encode()).hexdigest()[: MAX_ALLELE_CHARS - len(head)]


def stored_length(stored: str) -> int:
    """The number of bases of a stored allele (digests carry it)."""
    if stored.startswith(DIGEST_PREFIX):
        return int(stored[1:].split(":", 1)[0])
    return len(stored)


def trim(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Right-trim, then left-trim shared bases (at least one base left on each side)."""
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    return pos, ref, alt


def kind_of(ref: str, alt: str) -> int:
    if len(ref) == len(alt):
        return SNP if len(ref) == 1 else MNP
    if len(ref) == 1 and alt[0] == ref:
        return INS
    if len(alt) == 1 and ref[0] == alt:
        return DEL
    return INDEL


def normalise(chrom: str, pos: int, ref: str, alt: str) -> Allele | None:
    """One ALT of a VCF record (POS 1-based) as its index key, or None when it cannot be
    indexed (other contig; symbolic, breakend, `*` or `.` ALT; non-ACGTN bases)."""
    code = chrom_code(chrom)
    ref, alt = ref.upper(), alt.upper()
    if code is None or not _BASES.match(ref) or not _BASES.match(alt) or ref == alt:
        return None
    pos, ref, alt = trim(pos, ref, alt)
    return Allele(code, pos, stored_allele(ref), stored_allele(alt), kind_of(ref, alt))
