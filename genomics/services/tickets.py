"""htsget tickets over Crypt4GH (worker side): which encrypted segments hold a region, and
a header for the recipient whose data edit list keeps just the region's blocks.

The stream a ticket describes is (Crypt4GH v1 §3.2.3 edit lists, as htsget-rs's Crypt4GH
extension serves it; the layout is `stream_layout`'s):

    header for the recipient: the file's data key packet(s) + one edit list packet,
        written with the archive key as writer (so `crypt4gh decrypt --sender_pk
        archive.pub` still accepts every packet)
    the header blocks' whole 64 KiB segments, copied from the stored payload untouched
    the header blocks' last bytes and the region's first ones, sealed for this ticket
        as whole segments (zero padding the edit list skips makes up the last one)
    the stored segments that hold the region's blocks, untouched
    the region's last bytes and the EOF marker, sealed as the stream's last segment

Crypt4GH lets only a stream's last segment be short (§3.3: a decryptor reads 64 KiB +
28 bytes at a time), so the header cannot be a short segment of its own before stored
ones: its partial segment is filled with the region's first bytes instead, which is what
keeps the bytes served within the region's blocks + the header + less than 64 KiB.

Decrypted, the edit list skips everything in those segments but the wanted byte ranges,
so the output is the file's header blocks, the region's BGZF blocks (or CRAM containers)
and the EOF marker: a valid BGZF/BAM/CRAM file that samtools and bcftools read.

Which blocks hold a region is genomics.services.covering's, shared with the region
objects of tiers. Only the worker holds the archive key: the index is decrypted there,
never in the web. What every ticket of a file needs beyond the index (the data keys of its
stored header, the header blocks' last partial segment, the EOF marker, the payload's
parts) is derived on its first ticket and kept in this process's memory only, for
`INDEX_CACHE_SIZE` files, so a ticket costs one query, no decryption of the index or the
header, and a read of at most two payload segments (the region's first and last, to be
sealed anew); the grant is checked on every ticket.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from django.db.models import Exists, OuterRef

from genomics import c4gh, htsindex, payloads
from genomics.archive_secret import archive_secret_key
from genomics.models import FileIndex, GenomicFile, Grant
from genomics.services import covering
from genomics.services.covering import INDEX_CACHE_SIZE
from genomics.services.indexes import BlockMap

SEG = c4gh.SEGMENT_SIZE
CSEG = c4gh.CIPHER_SEGMENT_SIZE


class TicketRefused(Exception):
    """A ticket cannot be made; `code` is the htsget error name (htsget 1.3 "Errors")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TicketParts:
    """What to serve, in order: `header` (the recipient's Crypt4GH header), then `pieces`,
    each either a payload byte range [start, end) of whole stored segments (served by a
    block URL) or encrypted segments sealed for this ticket (served as a data: URI); and
    the file's plaintext ranges the stream decrypts to."""

    header: bytes
    pieces: list[tuple[int, int] | bytes]
    plaintext_ranges: list[tuple[int, int]]
    format: str

    @property
    def payload_ranges(self) -> list[tuple[int, int]]:
        return [piece for piece in self.pieces if isinstance(piece, tuple)]


@dataclass(frozen=True)
class _Prepared:
    """What every ticket of one file needs, derived once per ticketer process: the parsed
    index and block map, where the header blocks end, the data keys of the file's stored
    header, the plaintext of the header blocks from their last segment boundary
    (`head_start`, 64 KiB-aligned, to `head_end`), the EOF marker's plaintext (a fixed
    marker: BGZF's empty block, CRAM's EOF container) and the payload's parts (offset, size,
    storage name), so that a ticket costs no decryption of the index or the header and no
    query beyond its one."""

    parsed: covering.ParsedIndex
    block_map: BlockMap
    head_start: int
    head_end: int
    head: bytes
    keys: list[bytes]
    eof: bytes
    parts: list[tuple[int, int, str]]


# Keyed by the file, its index row and its stored header: a key rotation rewrites the
# header (and the index's headers) and so gets a fresh entry; the old one ages out.
_cache: OrderedDict[tuple[str, int, bytes], _Prepared] = OrderedDict()
_cache_lock = Lock()


def _prepared(file: GenomicFile, index: FileIndex, secret: bytes) -> _Prepared:
    """The file's ticket material, from the cache or derived now (worker only)."""
    assert file.header is not None
    header = bytes(file.header)
    key = (str(file.pk), index.pk, header)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    parsed, block_map = covering.parsed_index(index, secret)
    keys = c4gh.decrypt_header(header, secret).data_keys
    # A new payload comes with a new data key, so a new stored header: the parts are the
    # cached header's.
    parts = [(p.payload_offset, p.size, p.storage_name) for p in file.parts.all()]
    head_end = covering.header_end(block_map)
    head_start, eof_start = head_end // SEG * SEG, block_map.size - block_map.eof_size
    wanted = [(head_start, head_end), (eof_start, block_map.size)]
    plain = _read_plaintext(parts, keys, file.payload_size, wanted)
    prepared = _Prepared(
        parsed,
        block_map,
        head_start,
        head_end,
        _slice(plain, head_start, head_end) if head_end > head_start else b"",
        keys,
        _slice(plain, eof_start, block_map.size) if block_map.eof_size else b"",
        parts,
    )
    with _cache_lock:
        _cache[key] = prepared
        while len(_cache) > INDEX_CACHE_SIZE:
            _cache.popitem(last=False)
    return prepared


def forget(file_id: str) -> None:
    """Drop a file's cached ticket material (its data keys and index) from this process."""
    with _cache_lock:
        for key in [key for key in _cache if key[0] == file_id]:
            del _cache[key]


@dataclass(frozen=True)
class Stored:
    """Stored payload segments served untouched: their indices, ascending."""

    segments: list[int]


@dataclass(frozen=True)
class Sealed:
    """Plaintext sealed for one ticket (the file's data key, fresh nonces): the file's
    bytes `ranges`, then `filler` zero bytes that the edit list skips, so that a run which
    stored segments follow ends on a segment boundary (Crypt4GH §3.3: only the last
    segment may be short), then the EOF marker when `eof`."""

    ranges: list[tuple[int, int]]
    filler: int = 0
    eof: bool = False


def _clip(ranges: list[tuple[int, int]], low: int, high: int) -> list[tuple[int, int]]:
    clipped = [(max(a, low), min(b, high)) for a, b in ranges]
    return [(a, b) for a, b in clipped if b > a]


def stream_layout(
    head_end: int, ranges: list[tuple[int, int]], size: int, eof_size: int
) -> tuple[list[Stored | Sealed], list[tuple[int, int]]]:
    """How a ticket's stream is made: pieces in stream order, and the file's plaintext
    ranges the stored pieces keep (what the edit list keeps of their segments).

    `head_end` is where the header blocks end, `ranges` the region's blocks (sorted,
    disjoint, between `head_end` and the EOF marker), `size` the plaintext's size and
    `eof_size` the marker's. A stored segment is served whole, so each partial one costs
    its unwanted bytes; sealing the partial ones anew costs a read of at most two segments
    per ticket but serves (nearly) only what is kept:

    - the header's whole segments, stored;
    - when the region starts past the header's last (partial) segment: that segment's
      header bytes and the region's bytes up to the next segment boundary, sealed, padded
      with fewer than 64 KiB of skipped zeros (the stored segments that follow must start
      on a boundary of the stream's segments: padding = (region start - header end) mod
      64 KiB, never more than a stored partial segment would waste);
    - the stored segments holding the region's blocks, whole;
    - the region's bytes in its last (partial) segment and the EOF marker, sealed as the
      stream's last, short segment;

    and when the region reaches the EOF marker (a whole-file ticket) the stored segments
    run to the file's end, EOF included; without a region (class=header) the header's last
    bytes and the EOF are sealed together; when no stored segment would be left between
    the two sealed runs, they are one sealed run."""
    eof_start = size - eof_size
    kept = htsindex.merge_ranges([(0, head_end), *ranges])
    full = head_end // SEG * SEG  # the header's whole segments end here
    head_sealed, eof_stored = False, False
    low = high = full
    if ranges:
        first, last = ranges[0][0], ranges[-1][1]
        head_sealed = head_end > full and first // SEG > head_end // SEG
        low = (first // SEG + 1) * SEG if head_sealed else full
        eof_stored = last == eof_start  # the stored segments then end with the EOF, exactly
        high = size if eof_stored else last // SEG * SEG
    stored_kept = [*kept, (eof_start, size)] if eof_stored and eof_size else kept
    middle = covering.segments_holding(_clip(stored_kept, low, high))
    if not middle:  # nothing stored between: one sealed run after the header's segments
        head_sealed, eof_stored, high = False, False, full
    pieces: list[Stored | Sealed] = []
    if full:
        pieces.append(Stored(list(range(full // SEG))))
    if head_sealed:
        head = _clip(kept, full, low)
        pieces.append(Sealed(head, filler=-sum(b - a for a, b in head) % SEG))
    if middle:
        pieces.append(Stored(middle))
    if not eof_stored:
        tail = _clip(kept, high, eof_start)
        if tail or eof_size:
            pieces.append(Sealed(tail, eof=eof_size > 0))
    return pieces, _clip(stored_kept, 0, full) + _clip(stored_kept, low, high)


def stream_keeps(
    pieces: list[Stored | Sealed], stored_kept: list[tuple[int, int]], size: int, eof_size: int
) -> list[tuple[int, int]]:
    """The intervals of the decrypted stream that the edit list keeps (sorted, disjoint)."""
    keeps: list[tuple[int, int]] = []
    served = 0
    for piece in pieces:
        if isinstance(piece, Stored):
            for index in piece.segments:
                start, end = index * SEG, min((index + 1) * SEG, size)
                for a, b in _clip(stored_kept, start, end):
                    keeps.append((served + a - start, served + b - start))
                served += end - start
            continue
        for a, b in piece.ranges:
            keeps.append((served, served + b - a))
            served += b - a
        served += piece.filler
        if piece.eof:
            keeps.append((served, served + eof_size))
            served += eof_size
    return keeps


def edit_list(keeps: list[tuple[int, int]]) -> list[int]:
    """Alternate skip and keep lengths, starting with a skip (Crypt4GH §3.2.3), keeping
    exactly the served-stream intervals `keeps` (sorted, disjoint); an even count, so
    everything after the last keep is dropped."""
    edits: list[int] = []
    cursor = 0
    for start, end in keeps:
        if end <= start:
            continue
        if edits and start == cursor:
            edits[-1] += end - start
        else:
            edits += [start - cursor, end - start]
        cursor = end
    return edits


def _read_plaintext(
    parts: list[tuple[int, int, str]],
    keys: list[bytes],
    payload_size: int,
    ranges: list[tuple[int, int]],
) -> dict[int, bytes]:
    """The plaintext of every stored segment holding a byte of `ranges`, by segment number:
    one storage read and decryption per run of consecutive segments (covering.read_segments
    without its query: the parts are the cached ones)."""
    plain: dict[int, bytes] = {}
    runs = covering.segment_runs(covering.segments_holding(ranges), payload_size)
    for run_start, run_end in runs:
        data = b"".join(c4gh.decrypt_stream(keys, payloads.read_range(parts, run_start, run_end)))
        for offset in range(0, len(data), SEG):
            plain[run_start // CSEG + offset // SEG] = data[offset : offset + SEG]
    return plain


def _slice(plain: dict[int, bytes], start: int, end: int) -> bytes:
    """Bytes [start, end) of the plaintext from its decrypted segments."""
    return b"".join(
        plain[index][max(start - index * SEG, 0) : end - index * SEG]
        for index in range(start // SEG, (end - 1) // SEG + 1)
    )


def sealed_bytes(pieces: list[Sealed], prepared: _Prepared, file: GenomicFile) -> list[bytes]:
    """Each sealed piece's segments, encrypted under the file's first data key with fresh
    random nonces (§3.3: the data key's packet is in the recipient's header; a decryptor
    tries each of a header's data keys on every segment). The header blocks' last partial
    segment and the EOF marker come from the cache; the region's bytes are read and
    decrypted (at most two segments a ticket)."""
    low, high = prepared.head_start, prepared.head_end

    def cached(start: int, end: int) -> bool:
        return low <= start and end <= high

    reads = [(a, b) for piece in pieces for a, b in piece.ranges if not cached(a, b)]
    plain = _read_plaintext(prepared.parts, prepared.keys, file.payload_size, reads)
    sealed = []
    for piece in pieces:
        chunks = []
        for start, end in piece.ranges:
            if cached(start, end):
                chunks.append(prepared.head[start - low : end - low])
            else:
                chunks.append(_slice(plain, start, end))
        chunks.append(bytes(piece.filler))
        if piece.eof:
            chunks.append(prepared.eof)
        sealed.append(bytes(c4gh.encrypt_segments(prepared.keys[0], b"".join(chunks))))
    return sealed


def _unknown_reference(name: str, references: list[str]) -> str:
    """The NotFound message for a reference the file lacks, naming the file's own spelling
    of the same contig when it has one (chr17 for 17: htsget takes the file's names)."""
    from genomics.regions import contig_key

    same = [r for r in references if contig_key(r) == contig_key(name)]
    hint = f" It names that contig {same[0]}." if same else ""
    return f"The file has no reference named {name}.{hint}"


def recipient_header(
    keys: list[bytes], secret: bytes, recipient_public: bytes, edits: list[int]
) -> bytes:
    """The file's data key packets and one edit list packet, all for `recipient_public`,
    with the archive as writer (Crypt4GH §3.2.2 and §3.2.3)."""
    packets = [c4gh.data_encryption_packet(key) for key in keys]
    return c4gh.seal_header(
        [*packets, c4gh.edit_list_packet(edits)],
        writer_secret=secret,
        recipient_public=recipient_public,
    )


def ticket_build(
    *,
    file_id: str,
    recipient_public: bytes,
    regions: list[tuple[str, int | None, int | None]] | None,
    header_only: bool,
) -> TicketParts:
    """The parts of an htsget ticket for one file and one recipient key (worker only).
    `regions` are (referenceName, start, end) with htsget's coordinates; None: the whole
    file.

    The served stream is the recipient's header, then `stream_layout`'s pieces: stored
    segments, untouched, and the segments this ticket seals (the header blocks' partial
    segment filled with the region's first bytes; the region's last bytes with the EOF
    marker), so that what is served is the header, the region's blocks and less than
    64 KiB of padding. A whole-file ticket is the stored payload; a class=header ticket
    the header and the EOF.

    The recipient must already hold a grant of the file (a Grant row, which only the worker
    writes, after checking the escrow): a ticket discloses nothing a grant did not.
    Raises TicketRefused: NotFound (no such file, reference, or no grant for this key),
    UnsupportedFormat (a file that cannot be sliced or is not indexed yet)."""
    # One query: the file, its archive key, its index and whether this key holds a grant.
    file = (
        GenomicFile.objects.select_related("archive_key", "index")
        .annotate(
            granted=Exists(
                Grant.objects.filter(file=OuterRef("pk"), recipient_public_key=recipient_public)
            )
        )
        .filter(pk=file_id)
        .first()
    )
    if file is None or file.archive_key is None or file.header is None:
        forget(file_id)
        raise TicketRefused("NotFound", "No such file.")
    if not file.granted:
        raise TicketRefused("NotFound", "No grant of this file for your key.")
    try:
        index = file.index
    except FileIndex.DoesNotExist:
        raise TicketRefused(
            "UnsupportedFormat",
            "This file has no index (yet): it can only be fetched whole. A VCF must be "
            "compressed with bgzip to be sliced.",
        ) from None
    secret = archive_secret_key(file.archive_key)
    prepared = _prepared(file, index, secret)
    parsed, block_map, keys = prepared.parsed, prepared.block_map, prepared.keys
    ranges: list[tuple[int, int]] = []
    if not header_only:
        for reference_name, start, end in regions or [(None, None, None)]:  # type: ignore[list-item]
            try:
                ranges += covering.region_ranges(
                    parsed, block_map, reference_name=reference_name, start=start, end=end
                )
            except covering.UnknownReference:
                raise TicketRefused(
                    "NotFound", _unknown_reference(str(reference_name), block_map.references)
                ) from None
    ranges = htsindex.merge_ranges(ranges)
    size, eof_size = block_map.size, block_map.eof_size
    layout, stored_kept = stream_layout(prepared.head_end, ranges, size, eof_size)
    sealed = iter(sealed_bytes([p for p in layout if isinstance(p, Sealed)], prepared, file))
    pieces: list[tuple[int, int] | bytes] = []
    for piece in layout:
        if not isinstance(piece, Stored):
            pieces.append(next(sealed))
            continue
        for start, end in covering.segment_runs(piece.segments, file.payload_size):
            last = pieces[-1] if pieces else None
            if isinstance(last, tuple) and last[1] == start:  # the header's and the region's
                pieces[-1] = (last[0], end)
            else:
                pieces.append((start, end))
    edits = edit_list(stream_keeps(layout, stored_kept, size, eof_size))
    eof = [(size - eof_size, size)] if eof_size else []
    return TicketParts(
        header=recipient_header(keys, secret, recipient_public, edits),
        pieces=pieces,
        plaintext_ranges=htsindex.merge_ranges([(0, prepared.head_end), *ranges, *eof]),
        format=block_map.format,
    )
