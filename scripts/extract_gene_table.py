"""Extract the shipped gene tables (genomics/data/genes_<build>.csv) from annotables.

Source: the R package annotables 0.2.0 (github.com/stephenturner/annotables, commit
d2e86c7e2ca024d332e0b77db208ae685f59a527, GPL-3), whose `data/grch38.rda` and
`data/grch37.rda` are Ensembl BioMart gene tables (GRCh38: Ensembl Genes 109; GRCh37: the
grch37.ensembl.org archive). Kept: protein-coding genes on the primary chromosomes, as
`symbol,chrom,start,end` with BED coordinates (0-based, end exclusive: Ensembl's 1-based
start minus one). A symbol on several loci keeps one row per locus.

Run (needs `pip install rdata==1.1.0`, listed in requirements-dev.txt):
    python scripts/extract_gene_table.py path/to/grch38.rda path/to/grch37.rda
"""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path

import rdata

OUT = Path(__file__).resolve().parent.parent / "genomics" / "data"
PRIMARY = {str(n) for n in range(1, 23)} | {"X", "Y", "MT"}


def _order(chrom: str) -> tuple[int, str]:
    return (int(chrom), "") if chrom.isdigit() else (100, chrom)


def extract(rda: Path, build: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdata: tibble classes read as data.frame
        frame = next(iter(rdata.read_rda(str(rda)).values()))
    rows = set()
    for symbol, chrom, start, end, biotype in zip(
        frame["symbol"], frame["chr"], frame["start"], frame["end"], frame["biotype"], strict=True
    ):
        if biotype != "protein_coding" or chrom not in PRIMARY or not isinstance(symbol, str):
            continue
        if not symbol:
            continue
        rows.add((symbol, chrom, int(start) - 1, int(end)))
    ordered = sorted(rows, key=lambda r: (_order(r[1]), r[2], r[0]))
    with (OUT / f"genes_{build}.csv").open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["symbol", "chrom", "start", "end"])
        writer.writerows(ordered)
    return len(ordered)


if __name__ == "__main__":
    for path, build in zip(sys.argv[1:3], ("GRCh38", "GRCh37"), strict=True):
        print(build, extract(Path(path), build))
