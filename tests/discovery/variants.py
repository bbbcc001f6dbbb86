"""VCF/BCF builders for the variant index and Beacon tests (pysam writes them)."""

from __future__ import annotations

from pathlib import Path

import pysam

DONORS = ("D1", "D2", "D3")
# (contig, VCF POS, REF, ALTs, genotypes of D1..D3)
BRCA1 = ("chr17", 43044295, "A", ("G",), ((0, 1), (0, 0), (1, 1)))
RECORDS = (
    BRCA1,
    # multi-allelic: C>T carried twice, C>A never (AC 0: not indexed), lower case
    ("chr17", 43044400, "c", ("t", "a"), ((0, 1), (1, 0), (0, 0))),
    # padded deletion written with a shared suffix: TAG>TG is really AG>G... trimmed
    ("chr17", 43045000, "TCAG", ("TAG",), ((0, 1), (0, 0), (0, 0))),
    # insertion
    ("chr17", 43046000, "G", ("GTT",), ((0, 1), (0, 0), (0, 0))),
    # a contig without a chromosome code: not indexed
    ("chrUn_KI270302v1", 100, "A", ("C",), ((0, 1), (0, 0), (0, 0))),
    # symbolic ALT: not indexed
    ("chr17", 43047000, "A", ("<DEL>",), ((0, 1), (0, 0), (0, 0))),
    ("chrX", 1000, "G", ("C",), ((1, 1), (None, None), (0, 1))),
)


def header(*, with_counts: bool = False) -> pysam.VariantHeader:
    result = pysam.VariantHeader()
    result.add_line("##contig=<ID=chr17,length=83257441>")
    result.add_line("##contig=<ID=chrX,length=156040895>")
    result.add_line("##contig=<ID=chrUn_KI270302v1,length=2274>")
    result.add_line('##ALT=<ID=DEL,Description="Deletion">')
    result.add_line('##INFO=<ID=END,Number=1,Type=Integer,Description="End position">')
    result.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    if with_counts:
        result.add_line('##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count">')
        result.add_line('##INFO=<ID=AN,Number=1,Type=Integer,Description="Allele number">')
    for donor in DONORS:
        result.add_sample(donor)
    return result


def write(path: Path, mode: str = "wz", records=RECORDS, *, extra_sites: int = 0) -> bytes:
    """The file's bytes: VCF ("w"), bgzipped VCF ("wz") or BCF ("wb"); `extra_sites`
    SNPs on chr17 from position 1 make it larger."""
    with pysam.VariantFile(str(path), mode, header=header()) as out:
        filler = [
            ("chr17", 10 + 7 * n, "A", ("T",), ((0, 1), (0, 0), (0, 0))) for n in range(extra_sites)
        ]
        for contig, pos, ref, alts, genotypes in sorted(
            [*records, *filler], key=lambda r: (r[0], r[1])
        ):
            record = out.new_record(
                contig=contig, start=pos - 1, stop=pos - 1 + len(ref), alleles=(ref, *alts)
            )
            for donor, gt in zip(DONORS, genotypes, strict=True):
                record.samples[donor]["GT"] = gt
            out.write(record)
    return path.read_bytes()


def write_sites(path: Path, sites: list[tuple[str, int, str, str, int, int]]) -> bytes:
    """A sites-only VCF (no samples) carrying INFO AC and AN, as cohort summaries do:
    (contig, VCF POS, REF, ALT, AC, AN) per record."""
    result = pysam.VariantHeader()
    for contig, length in (("chr1", 248956422), ("chr17", 83257441)):
        result.add_line(f"##contig=<ID={contig},length={length}>")
    result.add_line('##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count">')
    result.add_line('##INFO=<ID=AN,Number=1,Type=Integer,Description="Allele number">')
    with pysam.VariantFile(str(path), "w", header=result) as out:
        for contig, pos, ref, alt, ac, an in sites:
            record = out.new_record(
                contig=contig, start=pos - 1, stop=pos - 1 + len(ref), alleles=(ref, alt)
            )
            record.info["AC"] = (ac,)
            record.info["AN"] = an
            out.write(record)
    return path.read_bytes()
