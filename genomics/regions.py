"""Genomic regions for region tiers: a BED upload or gene names, resolved to one sorted,
merged list of `(contig, start, end)` in BED coordinates (0-based, end exclusive; UCSC BED
and htslib's regions files use the same).

Gene names resolve through the shipped gene tables (`genomics/data/genes_<build>.csv`:
protein-coding genes of Ensembl, see genomics/data/README.md), versioned by GENE_TABLES, for
the reference build the file was found to use at ingest. Contig names follow the file: a
file naming `chr17` gets `chr17`, one naming `17` gets `17` (and `MT`/`chrM` alike). One
rule matches a region's contig to a file's (`contig_key`: the `chr` prefix on or off, `M`
and `MT` alike, any case; genomics.formats.reference.canonical, which ingest uses to find
the build); every place a region meets a file uses it (`regions_for_file`, `contig_known`),
since one dataset's files may name the same contig both ways.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from core.errors import ValidationError
from genomics.formats.reference import canonical as contig_key

Region = tuple[str, int, int]

DATA = Path(__file__).resolve().parent / "data"
# The version a gene name was resolved with is recorded on the tier (and in its terms).
GENE_TABLES = {
    "GRCh38": "Ensembl Genes 109 protein-coding (annotables 0.2.0)",
    "GRCh37": "Ensembl GRCh37 archive protein-coding (annotables 0.2.0)",
}
MAX_REGIONS = 10_000
MAX_GENES = 2_000
BED_MAX_BYTES = 2 * 1024 * 1024


@lru_cache(maxsize=2)
def _gene_table(build: str) -> dict[str, list[Region]]:
    table: dict[str, list[Region]] = {}
    with (DATA / f"genes_{build}.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            table.setdefault(row["symbol"].upper(), []).append(
                (row["chrom"], int(row["start"]), int(row["end"]))
            )
    return table


def _contig_namer(contigs: Iterable[str]) -> dict[str, str]:
    """contig_key ('17', 'MT') -> the first of `contigs` of that key ('chr17', 'chrM')."""
    names: dict[str, str] = {}
    for contig in contigs:
        names.setdefault(contig_key(contig), contig)
    return names


def contig_known(name: str, contigs: Iterable[str]) -> bool:
    """Whether `name` is one of `contigs` by the shared rule (contig_key)."""
    key = contig_key(name)
    return any(contig_key(c) == key for c in contigs)


def regions_for_file(regions: Sequence[Region], contigs: Iterable[str]) -> list[Region]:
    """`regions` named as the file whose contigs are `contigs` names them (`17` for a file
    of `17` when the tier says `chr17`, and the reverse); a region on a contig the file
    lacks keeps its name (it selects nothing there). Sorted and merged again."""
    namer = _contig_namer(contigs)
    return regions_normalise(
        (namer.get(contig_key(contig), contig), start, end) for contig, start, end in regions
    )


def genes_resolve(
    names: Sequence[str], *, build: str | None, contigs: Sequence[str]
) -> list[Region]:
    """The loci of `names` (HGNC symbols, any case) in `build`, named as in `contigs` (the
    files' contigs; files that list none get UCSC names `chrN`). A locus on a contig no file
    has is left out (it would select nothing).

    Raises ValidationError naming every unknown gene, every gene none of whose loci is on a
    contig of the files (e.g. SRY of a dataset without chrY), or when the build has no gene
    table.
    """
    if build not in GENE_TABLES:
        raise ValidationError(
            "Gene names need a file whose reference build is known (GRCh38 or GRCh37); give "
            "the regions as a BED file instead.",
            fields={"genes": [f"No gene table for build {build or 'unknown'}."]},
        )
    wanted = [n.strip() for n in names if n.strip()]
    if not wanted:
        raise ValidationError("Name at least one gene.", fields={"genes": ["Required."]})
    if len(wanted) > MAX_GENES:
        raise ValidationError(
            f"At most {MAX_GENES} genes per tier.", fields={"genes": ["Too many genes."]}
        )
    table = _gene_table(build)
    unknown = [n for n in wanted if n.upper() not in table]
    if unknown:
        raise ValidationError(
            f"Unknown gene name(s) in {GENE_TABLES[build]}: {', '.join(unknown[:20])}.",
            fields={"genes": ["Use HGNC symbols of protein-coding genes, e.g. BRCA1."]},
        )
    namer = _contig_namer(contigs)
    if contigs:
        absent = [
            n for n in wanted if not any(contig_key(c) in namer for c, _, _ in table[n.upper()])
        ]
        if absent:
            where = sorted({c for n in absent for c, _, _ in table[n.upper()]})
            raise ValidationError(
                f"The files have no records on the chromosome of gene(s) "
                f"{', '.join(absent[:20])} (chromosome {', '.join(where[:10])}); their contigs "
                f"are {', '.join(list(contigs)[:10])}.",
                fields={"genes": [f"Not on the files' contigs: {', '.join(absent[:20])}."]},
            )
    regions = [
        (namer.get(contig_key(chrom), f"chr{chrom}"), start, end)
        for name in wanted
        for chrom, start, end in table[name.upper()]
        if not contigs or contig_key(chrom) in namer
    ]
    return regions_normalise(regions)


def regions_past_end(regions: Sequence[Region], lengths: Mapping[str, int]) -> list[str]:
    """The regions (as `contig:start-end`, BED coordinates) that end past their contig's
    length in `lengths` (contig name -> length in bp, from the files' headers: VCF
    `##contig=<length=...>`, BAM `@SQ LN`; names matched by contig_key). A contig without
    a known length is not judged."""
    known = {contig_key(name): length for name, length in lengths.items()}
    return [
        f"{contig}:{start}-{end}"
        for contig, start, end in regions
        if (length := known.get(contig_key(contig))) is not None and end > length
    ]


def bed_parse(text: str) -> list[Region]:
    """Regions of a BED file (UCSC BED: tab- or space-separated `chrom start end`, extra
    columns ignored; `track`, `browser` and `#` lines skipped).

    Raises ValidationError naming the first bad line."""
    if len(text.encode()) > BED_MAX_BYTES:
        raise ValidationError(
            "The BED file is too large.", fields={"bed": [f"At most {BED_MAX_BYTES} bytes."]}
        )
    regions: list[Region] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "track", "browser")):
            continue
        columns = stripped.split()
        problem = ""
        if len(columns) < 3:
            problem = "it needs chrom, start and end"
        elif not (columns[1].isdigit() and columns[2].isdigit()):
            problem = "start and end must be whole numbers"
        elif int(columns[2]) <= int(columns[1]):
            problem = "end must be greater than start (BED is 0-based, end exclusive)"
        if problem:
            raise ValidationError(
                f"BED line {number}: {problem}.", fields={"bed": [f"Line {number}: {problem}."]}
            )
        regions.append((columns[0], int(columns[1]), int(columns[2])))
    if not regions:
        raise ValidationError("The BED file holds no region.", fields={"bed": ["No region."]})
    return regions_normalise(regions)


def regions_normalise(regions: Iterable[Region]) -> list[Region]:
    """Sorted by contig name then start, overlapping or touching regions merged: one form
    per scope, so equal scopes hash equally and no record is selected twice."""
    merged: list[Region] = []
    for contig, start, end in sorted(regions):
        if merged and merged[-1][0] == contig and start <= merged[-1][2]:
            merged[-1] = (contig, merged[-1][1], max(end, merged[-1][2]))
        else:
            merged.append((contig, start, end))
    if len(merged) > MAX_REGIONS:
        raise ValidationError(
            f"At most {MAX_REGIONS} regions per tier.", fields={"regions": ["Too many regions."]}
        )
    return merged


def regions_sha256(regions: Sequence[Region]) -> str:
    """SHA-256 of the regions' canonical JSON: names the scope in terms and audit entries."""
    canonical = json.dumps([list(r) for r in regions], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def regions_bed(regions: Sequence[Region]) -> str:
    """The regions as BED text (what `bcftools view -R` / `samtools view -L` read)."""
    return "".join(f"{contig}\t{start}\t{end}\n" for contig, start, end in regions)


def regions_from_json(value: object) -> list[Region]:
    """Regions stored as JSON lists back as tuples."""
    assert isinstance(value, list)
    return [(str(c), int(s), int(e)) for c, s, e in value]
