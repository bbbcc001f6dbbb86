"""Which stored bytes of an indexed file hold a region, and reading only those (worker side).

One rule for every reader by region, so they select the same BGZF blocks: the htsget
tickets (genomics.services.tickets) serve them, and the region objects of tiers
(genomics.services.region_objects) decrypt just them. The blocks are the ones htslib's own
iterator reads: the index's chunks for the region (genomics.htsindex.binned_chunks, SAM v1
§5.3 / CSI v1 / tabix), or the CRAI's containers (CRAM v3 §12).

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
from genomics.models import FileIndex, GenomicFile
from genomics.services.indexes import BlockMap, file_index_read

INDEX_CACHE_SIZE = 64
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
