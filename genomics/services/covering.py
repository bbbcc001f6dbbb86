"""Which stored bytes of an indexed file hold a region, and reading only those (worker side).

One rule for every reader by region, so they select the same BGZF blocks: the htsget
tickets (genomics.services.tickets) serve them, and the region objects of tiers
(genomics.services.region_objects) decrypt just them. The blocks are the ones htslib's own
iterator reads: the index's chunks for the region (genomics.htsindex.binned_chunks, SAM v1
§5.3 / CSI v1 / tabix), or the CRAI's containers (CRAM v3 §12). A ticket trims a BAM, BCF
or VCF region's chunks further, to the blocks of its first and last overlapping records
(`trimmed_spans`, reading the decrypted edge blocks' records); region objects let htslib
drop the chunks' extra records itself.

Offsets: `voffset` is a BGZF virtual offset (compressed offset << 16 | offset in the
block); byte ranges are [start, end) in the file's plaintext (what the Crypt4GH payload
decrypts to). A plaintext byte at `p` lies in 64 KiB segment `p // SEGMENT_SIZE`, stored at
payload offset `segment * CIPHER_SEGMENT_SIZE` (Crypt4GH v1 §3.3).

Only the worker holds the archive key: the index is decrypted here (and kept decrypted in
this process's memory only, for `INDEX_CACHE_SIZE` files), never in the web.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from threading import Lock

from genomics import c4gh, htsindex, payloads
from genomics.bgzf_records import BlockTexts, Record, ScanBudgetExceeded, overlapping
from genomics.models import FileIndex, GenomicFile
from genomics.services.indexes import BlockMap, file_index_read

INDEX_CACHE_SIZE = 64
# Compressed bytes a ticket may inflate to find one edge's record: the index's 16 kb
# windows hold ~70 KiB of a dense BAM or VCF (README "Figures"), so 4 segments leave room
# for long records; past it the edge keeps the index's block (never fewer records).
EDGE_SCAN_BUDGET = 4 * c4gh.SEGMENT_SIZE
# Compressed bytes one ticket may inflate at all its regions' edges (~100 regions' worth):
# a ticket of up to 1000 regions (htsget POST) must not cost a scan of 1000 x 2 edges;
# regions past it keep the index's blocks (covering.region_ranges).
TICKET_SCAN_LIMIT = 16 * 1024 * 1024
# Inflated to decide whether an edge block begins or ends inside a VCF line: itself and
# the block before it.
EDGE_CUT_BUDGET = 2 * 65536
# Formats whose records the ticketer reads at a region's edges (CRAM stays container-wise).
TRIMMED_FORMATS = ("BAM", "BCF", "VCF")
SEG = c4gh.SEGMENT_SIZE
CSEG = c4gh.CIPHER_SEGMENT_SIZE

ParsedIndex = htsindex.BinnedIndex | list[htsindex.CraiEntry]

_cache: OrderedDict[tuple[str, int], tuple[ParsedIndex, BlockMap]] = OrderedDict()
_cache_lock = Lock()


class UnknownReference(LookupError):
    """The file has no reference (contig) of that name."""


def parsed_index(index: FileIndex, secret: bytes) -> tuple[ParsedIndex, BlockMap]:
    """The file's index, decrypted with the archive secret key `secret` and parsed, and its
    block map. Raises c4gh.Crypt4GHError, htsindex.IndexUnreadable."""
    key = (str(index.file_id), index.pk)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    data, block_map = file_index_read(index=index, secret=secret)
    parsed: ParsedIndex
    if index.index_format == "CRAI":
        parsed = htsindex.parse_crai(data)
    else:
        parsed = htsindex.parse_binned(data, index.index_format)
    with _cache_lock:
        _cache[key] = (parsed, block_map)
        while len(_cache) > INDEX_CACHE_SIZE:
            _cache.popitem(last=False)
    return parsed, block_map


def header_end(block_map: BlockMap) -> int:
    """Where the file's header blocks end: the block where the first record starts, or the
    end of that block when the header's last bytes share it with records."""
    data_end = block_map.size - block_map.eof_size
    voffset = block_map.header_end
    block, inside = voffset >> 16, voffset & 0xFFFF
    return htsindex.block_end(block_map.blocks, block, data_end) if inside else block


def eof_range(block_map: BlockMap) -> tuple[int, int]:
    """The EOF marker's bytes (empty when the file has none)."""
    return block_map.size - block_map.eof_size, block_map.size


def reference_number(parsed: ParsedIndex, block_map: BlockMap, name: str) -> int | None:
    """The index's number of reference `name`; None for a contig the file declares but
    the index has no records of. Raises UnknownReference for a name the file lacks."""
    names = parsed.names if isinstance(parsed, htsindex.BinnedIndex) else []
    # A tabix index numbers only the contigs that have records, in its own order.
    order = names or block_map.references
    if name in order:
        return order.index(name)
    if name in block_map.references:
        return None
    raise UnknownReference(name)


def region_chunks(
    parsed: htsindex.BinnedIndex, block_map: BlockMap, name: str, start: int, end: int
) -> list[tuple[int, int]]:
    """Merged chunks [(start voffset, end voffset)] holding every record that overlaps
    `name`:[start, end) (0-based, end exclusive), in file order; every voffset is where a
    record starts, so a reader may seek to it. Raises UnknownReference."""
    reference = reference_number(parsed, block_map, name)
    if reference is None:
        return []
    return htsindex.binned_chunks(parsed, reference, start, end)


def region_ranges(
    parsed: ParsedIndex,
    block_map: BlockMap,
    *,
    reference_name: str | None,
    start: int | None,
    end: int | None,
) -> list[tuple[int, int]]:
    """Plaintext byte ranges [start, end) of the blocks (CRAM: containers) holding the
    region, between the header blocks and the EOF marker; `reference_name` None: every
    record. Raises UnknownReference."""
    first, data_end = header_end(block_map), block_map.size - block_map.eof_size
    if reference_name is None:
        return [(first, data_end)] if data_end > first else []
    low = start or 0
    high = end if end is not None else htsindex.MAX_POSITION
    if isinstance(parsed, htsindex.BinnedIndex):
        chunks = region_chunks(parsed, block_map, reference_name, low, high)
        ranges = htsindex.chunks_to_ranges(chunks, block_map.blocks, data_end)
    else:
        reference = reference_number(parsed, block_map, reference_name)
        if reference is None:
            return []
        ranges = htsindex.crai_ranges(parsed, block_map.blocks, reference, low, high, data_end)
    clipped = [(max(a, first), min(b, data_end)) for a, b in ranges]
    return htsindex.merge_ranges([(a, b) for a, b in clipped if b > a])


Span = tuple[int, int]
"""Virtual offsets [start, end) of kept bytes: whole blocks when both offsets are block
starts (offset 0 in the block); a span may start or end inside a block, at a record's
start or just past its end (a VCF line's newline) (the ticket re-encodes that block,
genomics.services.tickets).
A byte range [a, b) of a non-BGZF file (CRAM) is the span (a << 16, b << 16)."""


def span_bytes(span: Span, blocks: list[int], data_end: int) -> tuple[int, int]:
    """The byte range [start, end) of the blocks a span touches."""
    start, end = span
    last, inside = end >> 16, end & 0xFFFF
    return start >> 16, htsindex.block_end(blocks, last, data_end) if inside else last


def merge_spans(spans: list[Span], blocks: list[int], data_end: int) -> list[Span]:
    """Sorted spans, those whose blocks overlap or touch made one (what lies between two
    such spans is contiguous in the file, so their union is whole lines/records too)."""
    merged: list[Span] = []
    for span in sorted(s for s in spans if s[1] > s[0]):
        if merged and span[0] >> 16 <= span_bytes(merged[-1], blocks, data_end)[1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span[1]))
        else:
            merged.append(span)
    return merged


def _starts_mid_line(texts: BlockTexts, block: int) -> bool:
    """Whether the VCF block at `block` begins inside a line: the block before it does not
    end with a newline (`bgzip` cuts blocks every 64 KiB, htslib's writers on lines)."""
    previous = texts.previous_block(block)
    return previous is not None and not texts.text(previous).endswith(b"\n")


def _span_start(texts: BlockTexts, file_format: str, voffset: int) -> int:
    """Where a kept span starts for the record at `voffset`: its block's start, or the
    record itself for a VCF block that begins inside a line and for any BAM/BCF block the
    record does not begin (binary records may run across blocks, as `bcftools view -Ob`
    writes them, and a reader cannot find the next record in a block that begins inside
    one: SAMv1 §4.2, VCFv4.3 §6.3)."""
    if not voffset & 0xFFFF:
        return voffset
    if file_format != "VCF":
        return voffset
    texts.budget = max(texts.budget, EDGE_CUT_BUDGET)
    return voffset if _starts_mid_line(texts, voffset >> 16) else voffset >> 16 << 16


def _span_end(texts: BlockTexts, file_format: str, block: int, end: int) -> int:
    """Where a kept span ends for a record ending at `end` (just past its last byte) in the
    block at `block`: the block's end, or for a VCF block that ends inside a line, the
    record's end."""
    following = texts.next_block(block) << 16
    texts.budget = max(texts.budget, EDGE_CUT_BUDGET)
    text = texts.text(block)
    if end >= len(text) or (file_format == "VCF" and text.endswith(b"\n")):
        return following
    # A BAM/BCF block the record does not end: the next record begins in it and may run
    # into the block after, which the stream does not go on with.
    return block << 16 | end


def trimmed_spans(
    parsed: htsindex.BinnedIndex,
    block_map: BlockMap,
    texts: BlockTexts,
    *,
    reference_name: str,
    start: int,
    end: int,
) -> list[Span]:
    """The spans holding every record of `reference_name` that overlaps [start, end)
    (0-based, end exclusive): the index's chunks (`region_chunks`) trimmed to run from the
    block holding the first overlapping record to the block holding the last one's last
    byte, by reading those records (genomics.bgzf_records, htslib's overlap rule); records
    in between are kept as they are. Empty when no record overlaps (a gap, past the last
    record). A VCF block that begins or ends inside a line (a `bgzip`-made file) is cut at
    the record instead. An edge whose record lies past EDGE_SCAN_BUDGET keeps the index's
    block. Raises UnknownReference, bgzf_records.RecordUnreadable."""
    chunks = region_chunks(parsed, block_map, reference_name, start, end)
    if not chunks:
        return []
    file_format = block_map.format
    reference = reference_number(parsed, block_map, reference_name)
    assert reference is not None
    wanted: int | str = reference_name if file_format == "VCF" else reference
    first: Record | None = None
    texts.budget = EDGE_SCAN_BUDGET
    try:
        first = overlapping(texts, file_format, chunks[0][0], wanted, start, end, first=True)
        if first is None:
            return []
        span_start = _span_start(texts, file_format, first.start)
    except ScanBudgetExceeded:
        span_start = _span_start(texts, file_format, chunks[0][0])
    last: Record | None = None
    if end < htsindex.MAX_POSITION and first is not None:
        # The last overlapping record starts at or after the linear index's offset for the
        # region's last base (when that base has any), so two 16 kb windows at most are read.
        floor = max(first.start, htsindex.min_offset(parsed, reference, end - 1))
        texts.budget = EDGE_SCAN_BUDGET
        try:
            last = overlapping(texts, file_format, floor, wanted, start, end, first=False)
            if last is None and floor > first.start:
                last = overlapping(texts, file_format, first.start, wanted, start, end, first=False)
        except ScanBudgetExceeded:
            last = None
    if last is not None:
        span_end = _span_end(texts, file_format, last.last_block, last.end)
    else:  # the index's end: a chunk ends where a record starts (or at a block's start)
        last_chunk = chunks[-1][1]
        span_end = last_chunk
        if last_chunk & 0xFFFF:
            span_end = _span_end(texts, file_format, last_chunk >> 16, last_chunk & 0xFFFF)
    data_end = block_map.size - block_map.eof_size
    spans = []
    for chunk_start, chunk_end in chunks:
        a, b = htsindex.chunks_to_ranges([(chunk_start, chunk_end)], block_map.blocks, data_end)[0]
        low, high = max(a << 16, span_start), min(b << 16, span_end)
        if high > low:
            spans.append((low, high))
    return spans


def segments_holding(ranges: list[tuple[int, int]]) -> list[int]:
    """The numbers of the 64 KiB segments holding the plaintext `ranges` (sorted, disjoint),
    ascending, each once."""
    segments: list[int] = []
    for start, end in ranges:
        if end <= start:
            continue
        for index in range(start // SEG, (end - 1) // SEG + 1):
            if not segments or index > segments[-1]:
                segments.append(index)
    return segments


def segment_runs(segments: list[int], payload_size: int) -> list[tuple[int, int]]:
    """Payload byte ranges of the encrypted `segments` (ascending), consecutive ones
    merged into one run."""
    runs: list[tuple[int, int]] = []
    for index in segments:
        seg_start, seg_end = index * CSEG, min((index + 1) * CSEG, payload_size)
        if runs and runs[-1][1] == seg_start:
            runs[-1] = (runs[-1][0], seg_end)
        else:
            runs.append((seg_start, seg_end))
    return runs


def read_segments(
    file: GenomicFile, keys: list[bytes], ranges: list[tuple[int, int]]
) -> Iterator[tuple[int, bytes]]:
    """(plaintext offset, plaintext) of each run of whole segments holding the plaintext
    `ranges` (sorted, disjoint), decrypted with the file's data `keys`: only those segments
    are read from storage. Raises c4gh.SegmentError for a segment that fails
    authentication, OSError for a part shorter than recorded."""
    parts = [(p.payload_offset, p.size, p.storage_name) for p in file.parts.all()]
    for run_start, run_end in segment_runs(segments_holding(ranges), file.payload_size):
        encrypted = payloads.read_range(parts, run_start, run_end)
        yield run_start // CSEG * SEG, b"".join(c4gh.decrypt_stream(keys, encrypted))
