"""Variant sites and allele counts from a VCF/BCF byte stream, with pysam (htslib).

The bytes arrive through a pipe from ingest's single decrypting pass (no plaintext on
disk); htslib detects VCF, bgzipped VCF and BCF from the first bytes. Per-sample
genotypes are read only to count alleles and are never kept.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pysam

from discovery.variants.normalise import normalise

logger = logging.getLogger(__name__)

# (chrom code, pos, ref, alt, kind, allele count, allele number)
Row = tuple[int, int, str, str, int, int, int]


class Skipped:
    """Counts what a file holds that the index leaves out (said in VariantSource)."""

    def __init__(self) -> None:
        self.records = 0


def _counts(record: pysam.VariantRecord, alts: int, from_info: bool) -> tuple[list[int], int]:
    """Allele counts per ALT and the allele number: INFO AC/AN when the header declares
    them, else counted from the called genotypes (missing calls do not count)."""
    if from_info:
        an = record.info.get("AN")
        ac = record.info.get("AC")
        if an is not None and ac is not None:
            values = list(ac) if isinstance(ac, tuple) else [ac]
            if len(values) == alts:
                return [int(v) for v in values], int(an)
    counts = [0] * (alts + 1)
    for sample in record.samples.values():
        for allele in sample.get("GT") or ():
            if allele is not None and 0 <= allele <= alts:
                counts[allele] += 1
    return counts[1:], sum(counts)


def read_rows(fd: int, skipped: Skipped) -> Iterator[Row]:
    """Normalised allele rows of the VCF/BCF read from file descriptor `fd` (not closed).
    An allele that no sample carries (AC 0 with a known AN) is left out: the dataset does
    not hold it. A sites-only file without AC/AN gives AC = AN = 0 ("present, not
    counted"). Raises ValueError/OSError when the bytes are not a VCF/BCF."""
    with pysam.VariantFile(os.dup(fd)) as variants:
        info = variants.header.info
        from_info = "AC" in info and "AN" in info
        if from_info or not list(variants.header.samples):
            variants.subset_samples([])  # genotypes are not needed: parse less
        for record in variants:
            alts = record.alts or ()
            if not alts:
                continue
            counts, number = _counts(record, len(alts), from_info)
            indexed = False
            for alt, count in zip(alts, counts, strict=True):
                if count == 0 and number > 0:
                    continue
                allele = normalise(record.chrom, record.pos, record.ref or "", alt)
                if allele is None:
                    continue
                indexed = True
                yield (
                    allele.chrom,
                    allele.pos,
                    allele.ref,
                    allele.alt,
                    allele.kind,
                    count,
                    number,
                )
            if not indexed:
                skipped.records += 1
