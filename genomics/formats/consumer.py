"""Consumer genotype files (23andMe and AncestryDNA raw data): tab-separated SNP calls.

One person per file; only counts, chromosomes and the build are published, never an rsid
call or a genotype.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from genomics.formats.errors import FormatError
from genomics.formats.reference import build_from_text, public_contigs
from genomics.formats.result import Inspection
from genomics.formats.text import lines

_GENOTYPE_23 = re.compile(rb"^[ACGTDI-]{1,2}$")
_ALLELE = re.compile(rb"^[ACGTDI0-]$")
_ANCESTRY_CHROMOSOMES = {b"23": "X", b"24": "Y", b"25": "XY", b"26": "MT"}


def inspect_consumer(chunks: Iterable[bytes], *, compression: str, flavour: str) -> Inspection:
    ancestry = flavour == "AncestryDNA"
    expected = 5 if ancestry else 4
    result = Inspection(
        format=flavour, compression=compression, record_kind="genotyped SNPs", samples=1
    )
    comments: list[str] = []
    chromosomes: dict[str, None] = {}
    header_seen = False
    for number, line in enumerate(lines(chunks, kind=flavour), start=1):
        if not line:
            continue
        if line.startswith(b"#"):
            comments.append(line.decode(errors="replace"))
            continue
        fields = line.split(b"\t")
        if not header_seen and fields[0] == b"rsid":
            header_seen = True
            continue
        if len(fields) != expected:
            raise FormatError(
                f"Line {number}: expected {expected} tab-separated columns "
                f"for a {flavour} file, found {len(fields)}."
            )
        _rsid, chromosome, position = fields[:3]
        if not position.isdigit():
            raise FormatError(f"Line {number}: the position must be a whole number.")
        if ancestry:
            if not (_ALLELE.match(fields[3]) and _ALLELE.match(fields[4])):
                raise FormatError(f"Line {number}: alleles must be A, C, G, T, D, I or 0.")
            name = _ANCESTRY_CHROMOSOMES.get(chromosome, chromosome.decode(errors="replace"))
        else:
            if not _GENOTYPE_23.match(fields[3]):
                raise FormatError(
                    f"Line {number}: the genotype must be one or two of "
                    "A, C, G, T, D, I (or -- for no call)."
                )
            name = chromosome.decode(errors="replace")
        chromosomes[name] = None
        result.records += 1
    if result.records == 0:
        raise FormatError(f"The {flavour} file holds no genotype rows.")
    result.contigs = public_contigs(chromosomes)
    result.reference_build = build_from_text(" ".join(comments))
    return result
