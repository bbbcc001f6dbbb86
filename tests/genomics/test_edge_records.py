"""A region's byte ranges trimmed to its first and last overlapping records' blocks
(genomics.services.covering.trimmed_spans over genomics.bgzf_records), checked against
htslib's own iterator (pysam's fetch) on files written by htslib: the trimmed blocks run
exactly from the block holding the first record pysam returns for the region to the block
holding the last byte of the last one, and a region without records keeps no block."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pysam
import pytest

from genomics import bgzf_records, htsindex
from genomics.services import covering
from genomics.services.indexes import BlockMap
from tests.genomics import samples

CONTIG_LENGTH = 1_000_000
DELETION = (5_000, 30_000)  # a deletion from 5,000 (0-based) over 30 kb of reference
GAP = (400_000, 500_000)  # no record starts here, none spans it
LAST = 700_000  # no record starts past here
SAMPLES = 32  # ~170-byte VCF lines: a block holds fewer records than a 16 kb window
# Near the end of 16 kb window 12 (196,608-212,991) to the start of window 13.
MID_WINDOW = (212_900, 213_100)
SPLICED = (60_000, 100, 8_000)  # a read at 60,000: 100M 8000N 100M
UNMAPPED_AT = 90_123  # an unmapped read placed here (no CIGAR: it covers one base)


def positions() -> list[int]:
    """Where records start (0-based): every 37 bases, but in the gap and past LAST."""
    return [p for p in range(100, LAST, 37) if not GAP[0] - 200 <= p < GAP[1]]


def write_variants(path: Path, mode: str) -> Path:
    header = pysam.VariantHeader()
    header.add_line(f"##contig=<ID=chr1,length={CONTIG_LENGTH}>")
    header.add_line(f"##contig=<ID=chr2,length={CONTIG_LENGTH}>")
    header.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    for sample in range(SAMPLES):
        header.add_sample(f"S{sample}")
    starts = sorted({*positions(), DELETION[0]})
    with pysam.VariantFile(str(path), mode, header=header) as out:
        for contig, places in (("chr1", starts), ("chr2", [100, 200])):
            for start in places:
                ref = "A" * DELETION[1] if (contig, start) == ("chr1", DELETION[0]) else "A"
                record = out.new_record(
                    contig=contig, start=start, stop=start + len(ref), alleles=(ref, "G")
                )
                for sample in range(SAMPLES):
                    record.samples[f"S{sample}"]["GT"] = (0, 1)
                out.write(record)
    return path


def write_reads(path: Path) -> Path:
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "chr1", "LN": CONTIG_LENGTH}]}
    reads: list[tuple[int, str | None, int]] = [(p, "100M", 0) for p in positions()]
    reads += [(SPLICED[0], f"{SPLICED[1]}M{SPLICED[2]}N{SPLICED[1]}M", 0)]
    reads += [(UNMAPPED_AT, None, 4)]
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for number, (start, cigar, flag) in enumerate(sorted(reads, key=lambda r: r[0])):
            read = pysam.AlignedSegment(out.header)
            read.query_name, read.flag = f"r{number}", flag
            read.reference_id, read.reference_start = 0, start
            read.mapping_quality = 0 if flag else 60
            if cigar is not None:
                read.cigarstring = cigar
            read.query_sequence = "ACGT" * (50 if "N" in (cigar or "") else 25) if cigar else "A"
            read.query_qualities = pysam.qualitystring_to_array("I" * len(read.query_sequence))
            out.write(read)
    pysam.index(str(path))
    return path


Opener = Callable[..., Any]


class Local:
    """A file written by htslib, its parsed index and block map, as the ticketer has them
    decrypted, and each record's (start, end) virtual offsets by htslib's tell()."""

    def __init__(self, path: Path, file_format: str, index: Path, kind: str) -> None:
        self.data = path.read_bytes()
        self.format = file_format
        self.opener: Opener = pysam.AlignmentFile if file_format == "BAM" else pysam.VariantFile
        self.parsed = htsindex.parse_binned(index.read_bytes(), kind)
        self.path = path
        handle: Any
        with self.opener(str(path)) as handle:
            header_end = handle.tell()
            references = list(handle.references if file_format == "BAM" else handle.header.contigs)
            self.places: dict[str, tuple[int, int]] = {}
            iterator = handle.fetch(until_eof=True) if file_format == "BAM" else iter(handle)
            while True:
                before = handle.tell()
                try:
                    record = next(iterator)
                except StopIteration:
                    break
                self.places[self.key(record)] = (before, handle.tell())
        self.blocks = samples.bgzf_block_offsets(self.data)
        eof = len(htsindex.BGZF_EOF)
        self.block_map = BlockMap(
            file_format, references, header_end, self.blocks[:-1], len(self.data), eof
        )

    def key(self, record: Any) -> str:
        if self.format == "BAM":
            return str(record.query_name)
        return f"{record.contig}:{record.pos}"

    def expected(self, name: str, start: int, end: int) -> tuple[int, int] | None:
        """The bytes from the block of the first record htslib returns for the region to
        the end of the block holding the last one's last byte; None when it returns none."""
        with self.opener(str(self.path)) as handle:
            found = [self.key(r) for r in handle.fetch(name, start, end)]
        if not found:
            return None
        first, last = self.places[found[0]][0], self.places[found[-1]][1]
        block, inside = last >> 16, last & 0xFFFF
        last_block = block if inside else self.blocks[self.blocks.index(block) - 1]
        return first >> 16, htsindex.block_end(self.blocks, last_block, len(self.data))

    def trimmed(self, name: str, start: int, end: int) -> list[tuple[int, int]]:
        data_end = len(self.data) - self.block_map.eof_size
        texts = bgzf_records.BlockTexts(
            lambda a, b: self.data[a:b], self.block_map.blocks, data_end, 0
        )
        spans = covering.trimmed_spans(
            self.parsed, self.block_map, texts, reference_name=name, start=start, end=end
        )
        return [covering.span_bytes(s, self.block_map.blocks, data_end) for s in spans]

    def index_bytes(self, name: str, start: int, end: int) -> list[tuple[int, int]]:
        return covering.region_ranges(
            self.parsed, self.block_map, reference_name=name, start=start, end=end
        )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Local]:
    folder = tmp_path_factory.mktemp("edges")
    vcf = write_variants(folder / "v.vcf.gz", "wz")
    subprocess.run(["bcftools", "index", "-t", str(vcf)], check=True)
    bcf = write_variants(folder / "v.bcf", "wb")
    subprocess.run(["bcftools", "index", "-c", str(bcf)], check=True)
    bam = write_reads(folder / "r.bam")
    return {
        "VCF": Local(vcf, "VCF", Path(f"{vcf}.tbi"), "TBI"),
        "BCF": Local(bcf, "BCF", Path(f"{bcf}.csi"), "CSI"),
        "BAM": Local(bam, "BAM", Path(f"{bam}.bai"), "BAI"),
    }


# (what it shows, region): start and end inside 16 kb windows, records of the region
# starting before it, regions without records.
CASES = [
    ("a region in the middle of 16 kb windows", MID_WINDOW),
    ("a deletion / spliced read starting before the region", (20_000, 20_400)),
    ("a read spanning the region start", (60_050, 61_000)),
    ("the unmapped read placed in the region", (90_100, 90_130)),
    ("a region ending just past a gap's edge", (390_000, 400_000)),
]


@pytest.mark.parametrize("kind", ["VCF", "BCF", "BAM"])
@pytest.mark.parametrize(("what", "region"), CASES)
def test_the_trimmed_blocks_run_from_the_first_overlapping_records_block_to_the_lasts(
    files: dict[str, Local], kind: str, what: str, region: tuple[int, int]
) -> None:
    local = files[kind]
    start, end = region
    expected = local.expected("chr1", start, end)
    assert expected is not None, what
    trimmed = local.trimmed("chr1", start, end)
    assert trimmed and (trimmed[0][0], trimmed[-1][1]) == expected, what
    index = local.index_bytes("chr1", start, end)
    assert index[0][0] <= trimmed[0][0] and trimmed[-1][1] <= index[-1][1], what


def test_the_index_gives_more_blocks_than_the_trimmed_ones(files: dict[str, Local]) -> None:
    """Without reading records, the 16 kb window's chunks start blocks before a region in
    its middle and run past its end: the trimming is what removes them."""
    for kind, local in files.items():
        index = local.index_bytes("chr1", *MID_WINDOW)
        trimmed = local.trimmed("chr1", *MID_WINDOW)
        served = sum(b - a for a, b in trimmed)
        assert served < sum(b - a for a, b in index), kind


def test_the_records_of_a_long_deletion_before_the_region_are_found(
    files: dict[str, Local],
) -> None:
    """The deletion (VCF REF length; BCF rlen) starting 15 kb before the region overlaps it:
    its block is the first kept, though the region's own records start blocks later."""
    for kind in ("VCF", "BCF"):
        local = files[kind]
        deletion = local.places[f"chr1:{DELETION[0] + 1}"][0] >> 16
        trimmed = local.trimmed("chr1", 20_000, 20_400)
        assert trimmed[0][0] == deletion, kind
        assert local.trimmed("chr1", DELETION[0] + DELETION[1], 40_000)[0][0] > deletion


@pytest.mark.parametrize("kind", ["VCF", "BCF", "BAM"])
@pytest.mark.parametrize(
    ("what", "region"),
    [
        ("inside a gap between records", (GAP[0] + 10_000, GAP[1] - 10_000)),
        ("past the last record", (LAST + 1_000, LAST + 50_000)),
    ],
)
def test_a_region_without_records_keeps_no_block(
    files: dict[str, Local], kind: str, what: str, region: tuple[int, int]
) -> None:
    local = files[kind]
    assert local.expected("chr1", *region) is None
    assert local.trimmed("chr1", *region) == [], what


def test_a_ticket_that_has_scanned_its_limit_keeps_the_index_blocks_for_more_regions(
    files: dict[str, Local],
) -> None:
    """A POST of up to 1000 regions must not cost 2000 edge scans: once a ticket has
    inflated TICKET_SCAN_LIMIT bytes, further regions keep the index's blocks."""
    from genomics.services import tickets

    local = files["BAM"]
    data_end = len(local.data) - local.block_map.eof_size
    texts = bgzf_records.BlockTexts(
        lambda a, b: local.data[a:b], local.block_map.blocks, data_end, 0
    )

    def served() -> list[tuple[int, int]]:
        spans = tickets._region_spans(
            local.parsed,
            local.block_map,
            texts,
            reference_name="chr1",
            start=MID_WINDOW[0],
            end=MID_WINDOW[1],
        )
        return [covering.span_bytes(s, local.block_map.blocks, data_end) for s in spans]

    assert served() == local.trimmed("chr1", *MID_WINDOW)
    texts.spent = covering.TICKET_SCAN_LIMIT
    assert served() == local.index_bytes("chr1", *MID_WINDOW) != local.trimmed("chr1", *MID_WINDOW)


def test_a_damaged_record_at_an_edge_is_refused_not_crashed_on() -> None:
    """A BAM record whose CIGAR count runs past its bytes raises RecordUnreadable (the
    ticket then serves the index's blocks), never a bare struct.error."""
    core = struct.pack("<iiBBHHHiiii", 0, 100, 2, 60, 0, 60_000, 0, 0, -1, -1, 0) + b"r\0"
    block = bgzf_records.bgzf_blocks(struct.pack("<i", len(core)) + core)
    texts = bgzf_records.BlockTexts(lambda a, b: block[a:b], [0], len(block), 1 << 20)
    with pytest.raises(bgzf_records.RecordUnreadable):
        list(bgzf_records.records(texts, "BAM", 0))
