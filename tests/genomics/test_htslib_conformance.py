"""Our validation against htslib's reading of the specs (issue 14, item 2).

Every VCF, BCF, SAM, BAM and CRAM (and FASTQ and FASTA) file of Debian's `htslib-test`
package goes through `formats.inspect` and through pysam 0.24's bundled htslib: a file
htslib reads must be accepted with htslib's record (and sample) count, a file it refuses
must be refused with an error naming the line, the record or the header. The agreement
table is printed; the disagreements we keep on purpose are in `KEPT` (and the README).

`make test` installs the package first (scripts/ensure-htslib-test.sh). The CRAM files are
read by htslib with their reference FASTA from the same folder (found by @SQ name and
length), never fetched.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pysam
import pytest

from genomics import formats

HTSLIB_TEST = Path("/usr/share/htslib-test/test")
VARIANTS = (".vcf", ".vcf.gz", ".bcf")
ALIGNMENTS = (".sam", ".sam.gz", ".bam", ".cram")
SEQUENCES = (".fq", ".fastq", ".fa", ".fasta", ".fq.gz", ".fa.gz")
# Disagreements kept on purpose, by path under HTSLIB_TEST: why (the README's table says the
# same, with those outside this package: BGZF without its EOF block, CRAM 1.0 and 2.0).
KEPT = {
    "faidx.fa": "we refuse a '>' line without a name: a FASTA sequence is named by the first "
    "word of its definition line (NCBI FASTA format; SAM v1 §1.2.1 for reference names), "
    "and htslib's own faidx test feeds such lines on purpose",
}
# An error "names the line or record" (or the header, when htslib cannot read that).
LOCATED = re.compile(r"^(Line \d+|Record \d+|The \w+ header|The \w+ file is truncated)")


@dataclass
class Reading:
    ok: bool
    records: int | None = None
    samples: int | None = None
    error: str = ""


def files() -> list[Path]:
    if not HTSLIB_TEST.is_dir():
        pytest.fail(f"{HTSLIB_TEST} is missing: run scripts/ensure-htslib-test.sh (make test does)")
    wanted = VARIANTS + ALIGNMENTS + SEQUENCES
    return sorted(p for p in HTSLIB_TEST.rglob("*") if p.is_file() and p.name.endswith(wanted))


def cram_reference(path: Path) -> Path | None:
    """The FASTA beside `path` whose .fai names the CRAM's first @SQ, with its length if one
    does (xx#large_aux_java.cram says LN:30 for the 20 bases of xx.fa, which htslib allows)."""
    with pysam.AlignmentFile(str(path), format_options=["required_fields=0x0c"]) as cram:
        sq = cram.header.to_dict().get("SQ", [{}])[0]
    by_name = []
    for fai in sorted(path.parent.glob("*.fa.fai")):
        for line in fai.read_text().splitlines():
            name, length = line.split("\t")[:2]
            if name == sq.get("SN"):
                if int(length) == sq.get("LN"):
                    return fai.with_suffix("")
                by_name.append(fai.with_suffix(""))
    return by_name[0] if by_name else None


def htslib_reading(path: Path) -> Reading:
    name = path.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name.endswith(VARIANTS):
                with pysam.VariantFile(str(path)) as variants:
                    return Reading(True, sum(1 for _ in variants), len(variants.header.samples))
            if name.endswith(SEQUENCES):
                with pysam.FastxFile(str(path)) as reads:
                    return Reading(True, sum(1 for _ in reads))
            fasta = cram_reference(path) if name.endswith(".cram") else None
            with pysam.AlignmentFile(
                str(path), check_sq=False, reference_filename=str(fasta) if fasta else None
            ) as alignments:
                return Reading(True, sum(1 for _ in alignments.fetch(until_eof=True)))
    except (OSError, ValueError) as exc:
        return Reading(False, error=str(exc))


def our_reading(path: Path) -> Reading:
    data = path.read_bytes()
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    try:
        result = formats.inspect(chunks, filename=path.name)
    except formats.FormatError as exc:
        return Reading(False, error=str(exc))
    # Alignment files publish read-group samples, which htslib does not count: not compared.
    samples = result.samples if path.name.endswith(VARIANTS) else None
    return Reading(True, result.records, samples)


def verdict(theirs: Reading, ours: Reading) -> str:
    if theirs.ok and ours.ok:
        same = ours.records == theirs.records and (
            ours.samples is None or ours.samples == theirs.samples
        )
        return "agree" if same else "counts differ"
    if not theirs.ok and not ours.ok:
        return "agree" if LOCATED.match(ours.error) else "refused, error not located"
    return "we refuse, htslib reads" if theirs.ok else "we accept, htslib refuses"


def test_validation_agrees_with_htslib_on_its_own_test_files(capsys) -> None:
    rows = []
    for path in files():
        theirs, ours = htslib_reading(path), our_reading(path)
        rows.append((str(path.relative_to(HTSLIB_TEST)), theirs, ours, verdict(theirs, ours)))
    width = max(len(row[0]) for row in rows)
    table = [f"{'file':<{width}}  {'htslib':>12}  {'ours':>12}  verdict"]
    for name, theirs, ours, said in rows:
        show = [
            f"{r.records} rec" + (f"/{r.samples} smp" if r.samples is not None else "")
            if r.ok
            else "refused"
            for r in (theirs, ours)
        ]
        table.append(f"{name:<{width}}  {show[0]:>12}  {show[1]:>12}  {said}")
        if said != "agree":
            table.append(
                f"{'':<{width}}    htslib: {theirs.error[:100]!r} ours: {ours.error[:160]!r}"
            )
    agreed = sum(row[3] == "agree" for row in rows)
    table.append(
        f"{agreed} of {len(rows)} files agree with htslib (pysam {pysam.__version__}, "
        f"htslib {getattr(pysam.version, '__htslib_version__', '?')})"
    )
    with capsys.disabled():
        print("\n" + "\n".join(table))
    kinds = {row[0].rsplit(".", 2)[-1] for row in rows}
    assert {"vcf", "bcf", "sam", "bam", "cram"} <= kinds | {"gz"}  # every format is there
    assert sum(row[1].ok for row in rows) >= 100 and sum(not row[1].ok for row in rows) >= 3
    disagreements = {row[0]: row[3] for row in rows if row[3] != "agree"}
    assert disagreements.keys() == KEPT.keys(), disagreements
