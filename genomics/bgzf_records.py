"""The records at a region's edges, read from a file's decrypted BGZF blocks (worker side).

An index (BAI/TBI/CSI) points a region at the chunk of a 16 kb window (SAM v1 §5.2-5.3):
its first chunk can start blocks before the region's first record, and its last chunk
runs to the next bin's first record, past the region's end. To serve only the blocks from
the region's first overlapping record to its last, the ticketer inflates the few blocks at
the two edges and walks their records.

Hand-written with `struct` and bytes splitting rather than pysam, on purpose: this runs on
every ticket (the hot path, p95 < 100 ms), over a handful of blocks held in memory, and
pysam/htslib read only files (a memfd would cost a copy and htslib's setup per ticket).

- BGZF (SAM v1 §4.1): gzip members with a `BC` extra subfield giving the member's size
  - 1; a virtual offset is (compressed offset << 16) | offset in the inflated block.
- BAM records (SAM v1 §4.2): block_size, refID, pos (0-based), l_read_name, mapq, bin,
  n_cigar_op, flag, l_seq, ..., read_name, cigar. htslib's `bam_endpos`: pos + the CIGAR's
  reference length (M, D, N, =, X), or pos + 1 for an unmapped read or one whose CIGAR
  consumes no reference.
- BCF records (BCF2, VCFv4.3 §6.3): l_shared, l_indiv, then CHROM (contig number), POS
  (0-based), rlen: htslib's `bcf_readrec` spans POS..POS+rlen.
- VCF lines (VCF 4.3 §1.6): tabix's rule (htslib `tbx_parse1`): from POS - 1, as long as
  REF, or to INFO/END when present and past the start.

Overlap is htslib's iterator's (`hts_itr_next`): a record overlaps [start, end) when its
span's end > start and its begin < end; it stops at the first record of another
reference or beginning at or after `end`. Coordinates are htsget's: 0-based, end
exclusive.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# A BGZF block holds at most 64 KiB (SAM v1 §4.1); htslib fills blocks with 0xff00 bytes.
BGZF_MAX_BLOCK = 65536
BGZF_TEXT_TARGET = 0xFF00
_BGZF_HEADER = struct.Struct("<4BI2BH2BHH")  # ID1 ID2 CM FLG MTIME XFL OS XLEN SI1 SI2 SLEN BSIZE
_BAM_CORE = struct.Struct("<iiBBHHHi")  # refID pos l_read_name mapq bin n_cigar_op flag l_seq
_CIGAR_REFERENCE = frozenset((0, 2, 3, 7, 8))  # M, D, N, =, X consume the reference


class ScanBudgetExceeded(RuntimeError):
    """The edge's records lie further than the scan may read; the caller keeps the index's
    blocks for that edge."""


class RecordUnreadable(ValueError):
    """A block or record at the edge cannot be parsed (a damaged file)."""


@dataclass(frozen=True)
class Record:
    """One record's place: `start`, the virtual offset of its first byte; `last_block`, the
    compressed offset of the block holding its last byte, and `end`, the offset just past
    its last byte in that block (it may equal the block's inflated length); its reference
    (the contig number for BAM/BCF, the name for VCF) and span [begin, stop), 0-based."""

    start: int
    last_block: int
    end: int
    reference: int | str
    begin: int
    stop: int

    def overlaps(self, start: int, end: int) -> bool:
        return self.stop > start and self.begin < end


def inflate_block(data: bytes) -> bytes:
    """The inflated bytes of one whole BGZF block `data` (SAM v1 §4.1). Raises
    RecordUnreadable when it is not one."""
    try:
        (xlen,) = struct.unpack_from("<H", data, 10)
        return zlib.decompress(data[12 + xlen : len(data) - 8], -15)
    except (struct.error, zlib.error) as exc:
        raise RecordUnreadable("a BGZF block cannot be inflated") from exc


def bgzf_blocks(text: bytes, level: int = 6) -> bytes:
    """`text` as BGZF blocks (SAM v1 §4.1: a gzip member with the `BC` extra subfield),
    no EOF marker. Python's zlib deflates; the 18-byte header and 8-byte footer are packed
    here because neither `gzip` (no FEXTRA field) nor pysam's BGZFile (files only, and it
    appends an EOF marker) writes a BGZF block to memory. A text that deflates to more than
    a block holds (incompressible) is split in two."""
    if not text:
        return b""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    deflated = compressor.compress(text) + compressor.flush()
    size = _BGZF_HEADER.size + len(deflated) + 8
    if size > BGZF_MAX_BLOCK or len(text) > BGZF_MAX_BLOCK:
        half = len(text) // 2
        return bgzf_blocks(text[:half], level) + bgzf_blocks(text[half:], level)
    header = _BGZF_HEADER.pack(31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, size - 1)
    return header + deflated + struct.pack("<II", zlib.crc32(text), len(text))


class BlockTexts:
    """The inflated blocks of one file, read on demand through `fetch(start, end)` (the
    file's plaintext bytes [start, end): the decrypted segments) and kept for one ticket.
    `blocks` are every block's compressed offset, sorted; `data_end` where the EOF marker
    starts. At most `budget` compressed bytes are inflated: past it, ScanBudgetExceeded."""

    def __init__(
        self, fetch: Callable[[int, int], bytes], blocks: list[int], data_end: int, budget: int
    ) -> None:
        self.fetch, self.blocks, self.data_end, self.budget = fetch, blocks, data_end, budget
        self.texts: dict[int, bytes] = {}
        self.spent = 0  # compressed bytes inflated in all

    def next_block(self, offset: int) -> int:
        """The compressed offset of the block after the one at `offset` (or `data_end`)."""
        following = bisect.bisect_right(self.blocks, offset)
        if following < len(self.blocks):
            return min(self.blocks[following], self.data_end)
        return self.data_end

    def previous_block(self, offset: int) -> int | None:
        position = bisect.bisect_left(self.blocks, offset)
        return self.blocks[position - 1] if position > 0 else None

    def text(self, offset: int) -> bytes:
        """The inflated bytes of the block at compressed offset `offset`."""
        if offset not in self.texts:
            end = self.next_block(offset)
            if end - offset > self.budget:
                raise ScanBudgetExceeded(offset)
            self.budget -= end - offset
            self.spent += end - offset
            self.texts[offset] = inflate_block(self.fetch(offset, end))
        return self.texts[offset]


class _Cursor:
    """The inflated stream from one block on: `text` grows block by block; positions in it
    map back to virtual offsets."""

    def __init__(self, blocks: BlockTexts, voffset: int) -> None:
        self.blocks = blocks
        self.offsets = [voffset >> 16]
        self.starts = [0]
        self.text = bytearray(blocks.text(voffset >> 16))
        self.position = voffset & 0xFFFF

    def more(self) -> bool:
        """Inflate the next block onto `text`; False at the data's end."""
        following = self.blocks.next_block(self.offsets[-1])
        if following >= self.blocks.data_end:
            return False
        self.offsets.append(following)
        self.starts.append(len(self.text))
        self.text += self.blocks.text(following)
        return True

    def need(self, length: int) -> bool:
        """Whether `length` bytes from the current position are (made) available."""
        while len(self.text) < self.position + length:
            if not self.more():
                return False
        return True

    def voffset(self, position: int) -> int:
        block = bisect.bisect_right(self.starts, position) - 1
        return self.offsets[block] << 16 | (position - self.starts[block])

    def end_of(self, end: int) -> tuple[int, int]:
        """(block offset, offset past the byte) of the byte just before position `end`."""
        block = bisect.bisect_right(self.starts, end - 1) - 1
        return self.offsets[block], end - self.starts[block]


def _bam(cursor: _Cursor) -> Record | None:
    if not cursor.need(4):
        return None
    (block_size,) = struct.unpack_from("<i", cursor.text, cursor.position)
    length = 4 + block_size
    if block_size < 32 or not cursor.need(length):
        raise RecordUnreadable("a BAM record is cut short")
    at = cursor.position
    reference, begin, name_length, _, _, n_cigar, flag, _ = _BAM_CORE.unpack_from(
        cursor.text, at + 4
    )
    span = 0
    if not flag & 4:  # an unmapped read covers its position only (htslib's bam_endpos)
        cigar = struct.unpack_from(f"<{n_cigar}I", cursor.text, at + 36 + name_length)
        span = sum(op >> 4 for op in cigar if op & 0xF in _CIGAR_REFERENCE)
    last_block, end = cursor.end_of(at + length)
    cursor.position = at + length
    return Record(cursor.voffset(at), last_block, end, reference, begin, begin + max(span, 1))


def _bcf(cursor: _Cursor) -> Record | None:
    if not cursor.need(8):
        return None
    l_shared, l_indiv = struct.unpack_from("<II", cursor.text, cursor.position)
    length = 8 + l_shared + l_indiv
    if l_shared < 24 or not cursor.need(length):
        raise RecordUnreadable("a BCF record is cut short")
    at = cursor.position
    reference, begin, rlen = struct.unpack_from("<iii", cursor.text, at + 8)
    last_block, end = cursor.end_of(at + length)
    cursor.position = at + length
    return Record(cursor.voffset(at), last_block, end, reference, begin, begin + rlen)


def vcf_span(line: bytes) -> tuple[str, int, int]:
    """(CHROM, begin, stop) of a VCF data line, by tabix's rule (htslib `tbx_parse1`):
    begin = POS - 1; stop = begin + len(REF), or INFO/END when given and past begin."""
    fields = line.split(b"\t", 8)
    if len(fields) < 8:
        raise RecordUnreadable("a VCF line has fewer than 8 columns")
    try:
        position = int(fields[1])
    except ValueError as exc:
        raise RecordUnreadable("a VCF line's POS is not a number") from exc
    begin, stop = max(position - 1, 0), max(position, 1)
    if fields[3]:
        stop = begin + len(fields[3])
    info = fields[7]
    found = 4 if info.startswith(b"END=") else info.find(b";END=") + 5
    if found >= 4:
        digits = info[found:].split(b";", 1)[0]
        if digits.isdigit() and int(digits) > begin:
            stop = int(digits)
    return fields[0].decode(), begin, stop


_READERS = {"BAM": _bam, "BCF": _bcf}


def _vcf_lines(cursor: _Cursor) -> Iterator[tuple[int, int, bytes]]:
    """(start, end past the newline, line without it) of each data line from the cursor."""
    text = cursor.text
    while True:
        at = cursor.position
        newline = text.find(b"\n", at)
        while newline < 0:
            searched = len(text)
            if not cursor.more():
                break
            newline = text.find(b"\n", searched)
        end = newline + 1 if newline >= 0 else len(text)
        if end <= at:
            return
        cursor.position = end
        line = bytes(text[at : newline if newline >= 0 else end])
        if line and not line.startswith(b"#"):
            yield at, end, line


def _vcf_overlapping(
    cursor: _Cursor, wanted: str, start: int, end: int, first: bool
) -> Record | None:
    """The first (or last) VCF record overlapping [start, end) from the cursor on.

    Dense files put thousands of lines in the 16 kb window a scan crosses, so a line is
    parsed whole (REF, INFO/END) only when its span could reach `start`: from POS - 1, a
    record reaches at most as far as its REF, which is shorter than its line, unless its
    INFO has END. A line at or past `start` (and before `end`) overlaps by its first base."""
    name = wanted.encode()
    found: tuple[int, int, bytes] | None = None
    for at, past, line in _vcf_lines(cursor):
        fields = line.split(b"\t", 2)
        if len(fields) < 3:
            raise RecordUnreadable("a VCF line has fewer than 8 columns")
        try:
            begin = max(int(fields[1]) - 1, 0)
        except ValueError as exc:
            raise RecordUnreadable("a VCF line's POS is not a number") from exc
        if fields[0] != name or begin >= end:
            break
        if begin < start:
            if begin + len(line) <= start and b"END=" not in line:
                continue  # its span ends before `start`
            if vcf_span(line)[2] <= start:
                continue
        found = (at, past, line)
        if first:
            break
    if found is None:
        return None
    at, past, line = found
    contig, begin, stop = vcf_span(line)
    last_block, offset = cursor.end_of(past)
    return Record(cursor.voffset(at), last_block, offset, contig, begin, stop)


def overlapping(
    blocks: BlockTexts,
    file_format: str,
    voffset: int,
    wanted: int | str,
    start: int,
    end: int,
    *,
    first: bool,
) -> Record | None:
    """The first (`first`) or last record of reference `wanted` (BAM/BCF: its number; VCF:
    its name) overlapping [start, end), reading from `voffset` (a record's start) on, as
    htslib's iterator: it stops at another reference or at a record beginning at or after
    `end`. Raises RecordUnreadable, ScanBudgetExceeded."""
    if file_format == "VCF":
        try:
            return _vcf_overlapping(_Cursor(blocks, voffset), str(wanted), start, end, first)
        except UnicodeDecodeError as exc:
            raise RecordUnreadable("a VCF line is not text") from exc
    found = None
    for record in records(blocks, file_format, voffset):
        if record.reference != wanted or record.begin >= end:
            break
        if record.overlaps(start, end):
            found = record
            if first:
                break
    return found


def records(blocks: BlockTexts, file_format: str, voffset: int) -> Iterator[Record]:
    """The records of a BAM or BCF from virtual offset `voffset` (where a record starts) on,
    in file order, up to the data's end (a VCF's lines are walked by `overlapping`, which
    parses only the lines that could matter). Raises RecordUnreadable,
    ScanBudgetExceeded."""
    cursor = _Cursor(blocks, voffset)
    read = _READERS[file_format]
    while True:
        try:
            record = read(cursor)
        except (struct.error, UnicodeDecodeError) as exc:
            # A donor's file that htslib indexed should parse; one that does not (a CIGAR
            # running past its record) is refused here, not crashed on.
            raise RecordUnreadable(f"a {file_format} record is damaged") from exc
        if record is None:
            return
        yield record
