"""Reading the standard indexes of genomic files, to find the bytes that hold a region.

- BAI (SAM spec v1 §5.2), TBI (tabix spec) and CSI (CSI v1 spec): bins of chunks, each chunk
  a pair of BGZF virtual offsets (compressed offset << 16 | offset inside the block); a
  region's records lie in the chunks of the bins that overlap it (`reg2bins`, SAM §5.3),
  and chunks that end before the region's linear-index offset are skipped.
- CRAI (CRAM v3 §12): one gzipped text line per slice: reference id, alignment start
  (1-based) and span, container offset, slice offset and size.

Pure functions over bytes the worker has decrypted; no I/O. Coordinates are htsget's:
0-based, `start` inclusive, `end` exclusive (htsget 1.3 "Query parameters").
"""

from __future__ import annotations

import bisect
import gzip
import struct
from dataclasses import dataclass, field

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
# CRAM 3.x end-of-file container (CRAM v3 §9).
CRAM_EOF = bytes.fromhex(
    "0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b"
)
BAI_MIN_SHIFT = 14
BAI_DEPTH = 5
# Positions up to 2^29 for BAI/TBI (SAM §5.3); CSI may go further.
MAX_POSITION = 1 << 31


class IndexUnreadable(ValueError):
    """The index cannot be read (damaged, or of another kind than recorded)."""


@dataclass
class ReferenceBins:
    """One reference's bins: bin number -> chunks [(start voffset, end voffset)], and the
    linear index (BAI/TBI: 16 kb windows) or each bin's loffset (CSI)."""

    bins: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    linear: list[int] = field(default_factory=list)
    loffsets: dict[int, int] = field(default_factory=dict)


@dataclass
class BinnedIndex:
    min_shift: int
    depth: int
    references: list[ReferenceBins]
    names: list[str]  # from the index itself (TBI, CSI of a VCF), else empty


def _pseudo_bin(min_shift: int, depth: int) -> int:
    return ((1 << ((depth + 1) * 3)) - 1) // 7 + 1


def _tabix_names(data: bytes, position: int) -> tuple[list[str], int]:
    """The tabix header (format, columns, meta, skip, names) at `position`."""
    (l_nm,) = struct.unpack_from("<i", data, position + 24)
    raw = data[position + 28 : position + 28 + l_nm]
    names = [name.decode() for name in raw.split(b"\0") if name]
    return names, position + 28 + l_nm


def parse_binned(data: bytes, kind: str) -> BinnedIndex:
    """A BAI (raw bytes), TBI or CSI (BGZF-compressed, as stored) index.

    Raises IndexUnreadable when the bytes are not such an index."""
    try:
        if kind in ("TBI", "CSI"):
            data = gzip.decompress(data)
        return _parse(data, kind)
    except (struct.error, OSError, EOFError, UnicodeDecodeError) as exc:
        raise IndexUnreadable(f"the {kind} index is damaged") from exc


def _parse(data: bytes, kind: str) -> BinnedIndex:
    i32, u32, u64 = struct.Struct("<i"), struct.Struct("<I"), struct.Struct("<Q")
    magic = {"BAI": b"BAI\1", "TBI": b"TBI\1", "CSI": b"CSI\1"}[kind]
    if data[:4] != magic:
        raise IndexUnreadable(f"not a {kind} index")
    position = 4
    names: list[str] = []
    min_shift, depth = BAI_MIN_SHIFT, BAI_DEPTH
    if kind == "CSI":
        min_shift, depth, l_aux = struct.unpack_from("<iii", data, position)
        position += 12
        if l_aux >= 28:
            names, _ = _tabix_names(data, position)
        position += l_aux
    (n_ref,) = i32.unpack_from(data, position)
    position += 4
    if kind == "TBI":
        # n_ref comes first, then the tabix header.
        names, position = _tabix_names(data, position)
    pseudo = _pseudo_bin(min_shift, depth)
    references: list[ReferenceBins] = []
    for _ in range(n_ref):
        ref = ReferenceBins()
        (n_bin,) = i32.unpack_from(data, position)
        position += 4
        for _ in range(n_bin):
            (bin_number,) = u32.unpack_from(data, position)
            position += 4
            if kind == "CSI":
                (loffset,) = u64.unpack_from(data, position)
                position += 8
                ref.loffsets[bin_number] = loffset
            (n_chunk,) = i32.unpack_from(data, position)
            position += 4
            chunks = list(struct.unpack_from(f"<{2 * n_chunk}Q", data, position))
            position += 16 * n_chunk
            if bin_number != pseudo:  # the pseudo-bin holds counts, not chunks
                ref.bins[bin_number] = list(zip(chunks[0::2], chunks[1::2], strict=True))
        if kind != "CSI":
            (n_intv,) = i32.unpack_from(data, position)
            position += 4
            ref.linear = list(struct.unpack_from(f"<{n_intv}Q", data, position))
            position += 8 * n_intv
        references.append(ref)
    return BinnedIndex(min_shift, depth, references, names)


def reg2bins(start: int, end: int, min_shift: int, depth: int) -> list[int]:
    """The bins that may hold records overlapping [start, end) (SAM spec §5.3, CSI §2)."""
    bins: list[int] = []
    end -= 1
    shift, offset = min_shift + depth * 3, 0
    for level in range(depth + 1):
        bins.extend(range(offset + (start >> shift), offset + (end >> shift) + 1))
        shift -= 3
        offset += 1 << (level * 3)
    return bins


def _min_offset(index: BinnedIndex, ref: ReferenceBins, start: int) -> int:
    """No record overlapping `start` begins before this virtual offset: the linear index's
    window (BAI/TBI), or the loffset of the smallest existing bin holding `start` (CSI)."""
    if ref.linear:
        window = min(start >> index.min_shift, len(ref.linear) - 1)
        return ref.linear[window]
    shift, offsets = index.min_shift, []
    offset = 0
    for level in range(index.depth + 1):
        offsets.append(offset)
        offset += 1 << (level * 3)
    for level in range(index.depth, -1, -1):
        bin_number = offsets[level] + (start >> (shift + (index.depth - level) * 3))
        if bin_number in ref.loffsets:
            return ref.loffsets[bin_number]
    return 0


def min_offset(index: BinnedIndex, reference: int, position: int) -> int:
    """No record of reference number `reference` overlapping `position` begins before this
    virtual offset, which is where a record begins (0 for a reference without records)."""
    if not 0 <= reference < len(index.references):
        return 0
    return _min_offset(index, index.references[reference], min(position, MAX_POSITION - 1))


def _max_offset(index: BinnedIndex, ref: ReferenceBins, end: int) -> int:
    """No record starting at or after `end` comes before this virtual offset: the first
    chunk of the next existing bin to the right of `end` (htslib's `hts_itr_query`)."""
    first_leaf = ((1 << (index.depth * 3)) - 1) // 7
    n_bins = ((1 << (3 * index.depth + 3)) - 1) // 7
    bin_number = first_leaf + ((end - 1) >> index.min_shift) + 1
    if bin_number >= n_bins:
        bin_number = 0
    while True:
        while bin_number % 8 == 1:  # a first child: move up to the parent
            bin_number = (bin_number - 1) >> 3
        if bin_number == 0:
            return (1 << 64) - 1
        chunks = ref.bins.get(bin_number)
        if chunks:
            return min(chunk[0] for chunk in chunks)
        bin_number += 1


def binned_chunks(
    index: BinnedIndex, reference: int, start: int, end: int
) -> list[tuple[int, int]]:
    """Merged chunks [(start voffset, end voffset)] holding every record of reference
    number `reference` that overlaps [start, end); empty when none does. Chunks are
    clamped to [min offset, max offset] as htslib's iterator does: an index merges small
    bins into their parent (htslib's `compress_binning`), so one chunk may span far more
    than the region."""
    if not 0 <= reference < len(index.references):
        return []
    ref = index.references[reference]
    end = min(end, MAX_POSITION)
    floor = _min_offset(index, ref, start)
    ceiling = _max_offset(index, ref, end)
    chunks = sorted(
        (max(chunk[0], floor), min(chunk[1], ceiling))
        for bin_number in reg2bins(start, end, index.min_shift, index.depth)
        for chunk in ref.bins.get(bin_number, ())
        if chunk[1] > floor and chunk[0] < ceiling
    )
    merged: list[tuple[int, int]] = []
    for chunk_start, chunk_end in chunks:
        if merged and chunk_start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], chunk_end))
        else:
            merged.append((chunk_start, chunk_end))
    return merged


def chunks_to_ranges(
    chunks: list[tuple[int, int]], blocks: list[int], size: int
) -> list[tuple[int, int]]:
    """Byte ranges [start, end) of the file holding `chunks`: from the block where a chunk
    starts to the end of the block where it ends (a chunk ending at offset 0 of a block
    needs none of it). `blocks` are the sorted compressed offsets of every block."""
    ranges = []
    for chunk_start, chunk_end in chunks:
        first = chunk_start >> 16
        last, inside = chunk_end >> 16, chunk_end & 0xFFFF
        ranges.append((first, block_end(blocks, last, size) if inside else last))
    return ranges


def block_end(blocks: list[int], offset: int, size: int) -> int:
    """Where the block starting at `offset` ends (the next block's start, or `size`)."""
    following = bisect.bisect_right(blocks, offset)
    return blocks[following] if following < len(blocks) else size


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True)
class CraiEntry:
    reference: int
    start: int  # 0-based
    span: int
    container: int


def parse_crai(data: bytes) -> list[CraiEntry]:
    """A CRAI index (gzipped text, CRAM v3 §12). Raises IndexUnreadable when damaged."""
    try:
        text = gzip.decompress(data).decode("ascii")
        entries = []
        for line in text.splitlines():
            if not line.strip():
                continue
            fields = line.split("\t")
            entries.append(
                CraiEntry(int(fields[0]), int(fields[1]) - 1, int(fields[2]), int(fields[3]))
            )
        return entries
    except (OSError, EOFError, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise IndexUnreadable("the CRAI index is damaged") from exc


def crai_ranges(
    entries: list[CraiEntry],
    containers: list[int],
    reference: int,
    start: int,
    end: int,
    data_end: int,
) -> list[tuple[int, int]]:
    """Byte ranges of the containers holding slices of `reference` overlapping [start, end):
    each from its offset to the next container's (or `data_end`, the EOF container's)."""
    wanted = {
        entry.container
        for entry in entries
        if entry.reference == reference
        and entry.start < end
        and entry.start + max(entry.span, 1) > start
    }
    return merge_ranges(
        [(offset, block_end(containers, offset, data_end)) for offset in sorted(wanted)]
    )
