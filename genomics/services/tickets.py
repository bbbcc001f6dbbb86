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
    (several regions: the two partial segments at each gap's edges, sealed as one run)
    the region's last bytes and the EOF marker, sealed as the stream's last segment

Crypt4GH lets only a stream's last segment be short (§3.3: a decryptor reads 64 KiB +
28 bytes at a time), so the header cannot be a short segment of its own before stored
ones: its partial segment is filled with the region's first bytes instead, which is what
keeps the bytes served within the region's blocks + the header + less than 64 KiB.

A region's blocks run from the block holding its first overlapping record to the block
holding its last one's last byte (covering.trimmed_spans reads the records at the two
edges; the index alone gives 16 kb windows' worth more). A `bgzip`-made VCF cuts blocks
inside lines: an edge block that begins or ends inside a line is re-encoded for the ticket
as a new BGZF block of the whole lines from the first kept record / up to the end of the
last one, and the header's last block (shared with records) as one of the header's own
lines. Those blocks are bytes the stored file lacks: they travel in sealed pieces only
(`Sealed` parts may be literal bytes), and no stored segment serves a byte of the blocks
they replace.

Decrypted, the edit list skips everything in those segments but the wanted bytes, so the
output is the file's header blocks, the region's BGZF blocks (or CRAM containers) and the
EOF marker: a valid BGZF/BAM/BCF/VCF/CRAM file of whole records that samtools and bcftools
read, with or without `-r`.

Which blocks hold a region is genomics.services.covering's, shared with the region
objects of tiers. Only the worker holds the archive key: the index is decrypted there,
never in the web. What every ticket of a file needs beyond the index (the data keys of its
stored header, the header blocks' last partial segment, the EOF marker, the payload's
parts, a VCF header's re-encoded last block) is derived on its first ticket and kept in
this process's memory only, for `INDEX_CACHE_SIZE` files, so a ticket costs one query, no
decryption of the index or the header, and a read of the payload segments at the region's
two edges (where its first and last records are looked for, within
covering.EDGE_SCAN_BUDGET each, and which are sealed anew); the grant is checked on every
ticket.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

from django.db.models import Exists, OuterRef

from genomics import bgzf_records, c4gh, htsindex, payloads
from genomics.archive_secret import archive_secret_key
from genomics.models import FileIndex, GenomicFile, Grant
from genomics.services import covering
from genomics.services.covering import INDEX_CACHE_SIZE
from genomics.services.indexes import BlockMap

SEG = c4gh.SEGMENT_SIZE
CSEG = c4gh.CIPHER_SEGMENT_SIZE
logger = logging.getLogger(__name__)


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
    head_stop: int
    head_literal: bytes


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
    head_block, inside = block_map.header_end >> 16, block_map.header_end & 0xFFFF
    wanted = [(head_start, head_end), (eof_start, block_map.size)]
    if block_map.format in covering.TRIMMED_FORMATS and inside:
        wanted.append((head_block, head_end))
    plain = _read_plaintext(parts, keys, file.payload_size, htsindex.merge_ranges(wanted))
    # A `bgzip`-made VCF (or a BCF/BAM whose writer did not flush after the header) shares
    # the header's last block with records, the last of which may run into the next
    # block: when the stream does not go on with that block's records, the header ends
    # with a re-encoded block of the header alone (VCF 4.3 §1.4-1.5, SAMv1 §4.2), the same
    # for every ticket of the file, so that class=header and a region in a gap serve no
    # record (a small file is often one block: header and every record).
    head_stop, head_literal = head_end << 16, b""
    if block_map.format in covering.TRIMMED_FORMATS and inside:
        text = bgzf_records.inflate_block(_slice(plain, head_block, head_end))
        if len(text) > inside:
            head_stop, head_literal = block_map.header_end, bgzf_records.bgzf_blocks(text[:inside])
    prepared = _Prepared(
        parsed,
        block_map,
        head_start,
        head_end,
        _slice(plain, head_start, head_end) if head_end > head_start else b"",
        keys,
        _slice(plain, eof_start, block_map.size) if block_map.eof_size else b"",
        parts,
        head_stop,
        head_literal,
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


def _clip(ranges: list[tuple[int, int]], low: int, high: int) -> list[tuple[int, int]]:
    clipped = [(max(a, low), min(b, high)) for a, b in ranges]
    return [(a, b) for a, b in clipped if b > a]


@dataclass(frozen=True)
class Stored:
    """Stored payload segments served untouched: their indices, ascending, and the file's
    byte ranges of them the stream keeps (the edit list skips the rest)."""

    segments: list[int]
    kept: list[tuple[int, int]]


@dataclass(frozen=True)
class Sealed:
    """Plaintext sealed for one ticket (the file's data key, fresh nonces): `parts` in
    order, each the file's bytes [start, end) or literal bytes that are not in the stored
    file (a re-encoded edge block), then `filler` zero bytes that the edit list skips, so
    that a run which stored segments follow ends on a segment boundary (Crypt4GH §3.3:
    only the last segment may be short)."""

    parts: list[tuple[int, int] | bytes]
    filler: int = 0


Item = tuple[int, int, bytes | None]
"""What a stream keeps, in order: the file's bytes [start, end) (None), or literal bytes
standing in for the file's block [start, end) (a re-encoded BGZF block)."""


def stream_layout(items: list[Item], size: int) -> list[Stored | Sealed]:
    """How a ticket's stream is made from the kept `items` (in file order, disjoint) of a
    plaintext of `size` bytes: pieces in stream order.

    A stored segment is served whole (Crypt4GH §3.3 segments are 64 KiB + 28 bytes; only
    the stream's last may be short), so a segment the stream keeps entirely (no byte of it
    skipped or replaced by a literal) is stored; every other segment's kept bytes are
    sealed anew, which costs their read and decryption (the region's edges, the header's
    last partial segment, the EOF) but serves only what is kept. A sealed run that stored
    segments follow is padded with fewer than 64 KiB of skipped zeros. So:

    - the header's whole segments are stored; its last partial one is sealed with the
      region's first bytes up to the next stored segment;
    - a literal (a re-encoded edge block) always lies wholly in a sealed run, and so do
      the segments its block touches;
    - between two regions, the two partial segments of the gap's edges are one sealed run;
    - the region's last partial segment and the EOF marker are the last, short, sealed run;

    and when every segment is kept whole (a whole-file ticket) the stream is the stored
    payload itself. Bytes served = kept bytes + under 64 KiB per sealed run that stored
    segments follow."""
    kept_per_segment: dict[int, int] = {}
    replaced: set[int] = set()
    for start, end, literal in items:
        if literal is not None:
            replaced.update(range(start // SEG, (end - 1) // SEG + 1))
            continue
        for index in range(start // SEG, (end - 1) // SEG + 1):
            low, high = max(start, index * SEG), min(end, (index + 1) * SEG)
            kept_per_segment[index] = kept_per_segment.get(index, 0) + high - low
    whole = {
        index
        for index, kept in kept_per_segment.items()
        if kept == min(SEG, size - index * SEG) and index not in replaced
    }
    pieces: list[Stored | Sealed] = []

    def sealed() -> Sealed:
        if not pieces or not isinstance(pieces[-1], Sealed):
            pieces.append(Sealed([]))
        last = pieces[-1]
        assert isinstance(last, Sealed)
        return last

    def stored(index: int, part: tuple[int, int]) -> None:
        if pieces and isinstance(pieces[-1], Sealed):  # it ends on a segment boundary
            parts = pieces[-1].parts
            length = sum(len(p) if isinstance(p, bytes) else p[1] - p[0] for p in parts)
            pieces[-1] = Sealed(parts, filler=-length % SEG)
        if not pieces or not isinstance(pieces[-1], Stored):
            pieces.append(Stored([], []))
        run = pieces[-1]
        assert isinstance(run, Stored)
        if not run.segments or run.segments[-1] != index:
            run.segments.append(index)
        if run.kept and run.kept[-1][1] == part[0]:
            run.kept[-1] = (run.kept[-1][0], part[1])
        else:
            run.kept.append(part)

    for start, end, literal in items:
        if literal is not None:
            if literal:
                sealed().parts.append(literal)
            continue
        for index in range(start // SEG, (end - 1) // SEG + 1):
            part = (max(start, index * SEG), min(end, (index + 1) * SEG))
            if index in whole:
                stored(index, part)
                continue
            run = sealed()
            previous = run.parts[-1] if run.parts else None
            if isinstance(previous, tuple) and previous[1] == part[0]:
                run.parts[-1] = (previous[0], part[1])
            else:
                run.parts.append(part)
    return pieces


def stream_keeps(pieces: list[Stored | Sealed], size: int) -> list[tuple[int, int]]:
    """The intervals of the decrypted stream that the edit list keeps (sorted, disjoint)."""
    keeps: list[tuple[int, int]] = []
    served = 0
    for piece in pieces:
        if isinstance(piece, Stored):
            for index in piece.segments:
                start, end = index * SEG, min((index + 1) * SEG, size)
                for a, b in _clip(piece.kept, start, end):
                    keeps.append((served + a - start, served + b - start))
                served += end - start
            continue
        for part in piece.parts:
            length = len(part) if isinstance(part, bytes) else part[1] - part[0]
            keeps.append((served, served + length))
            served += length
        served += piece.filler
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


class _Plaintext:
    """The file's plaintext bytes one ticket reads: its decrypted segments by number, read
    from storage on first use, one read and decryption per run of missing segments."""

    def __init__(self, prepared: _Prepared, payload_size: int) -> None:
        self.prepared, self.payload_size = prepared, payload_size
        self.segments: dict[int, bytes] = {}

    def read(self, ranges: list[tuple[int, int]]) -> None:
        missing = [
            (index * SEG, (index + 1) * SEG)
            for index in covering.segments_holding(ranges)
            if index not in self.segments
        ]
        if missing:
            p = self.prepared
            self.segments.update(
                _read_plaintext(p.parts, p.keys, self.payload_size, htsindex.merge_ranges(missing))
            )

    def cached(self, start: int, end: int) -> bytes | None:
        """Bytes [start, end) from the file's cached material (the header's last partial
        segment, the EOF marker), or None."""
        p = self.prepared
        if p.head_start <= start and end <= p.head_end:
            return p.head[start - p.head_start : end - p.head_start]
        eof_start = p.block_map.size - p.block_map.eof_size
        if eof_start <= start and end <= p.block_map.size and p.block_map.eof_size:
            return p.eof[start - eof_start : end - eof_start]
        return None

    def bytes(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the file's plaintext."""
        cached = self.cached(start, end)
        if cached is not None:
            return cached
        self.read([(start, end)])
        return _slice(self.segments, start, end)


def sealed_bytes(pieces: list[Sealed], plaintext: _Plaintext) -> list[bytes]:
    """Each sealed piece's segments, encrypted under the file's first data key with fresh
    random nonces (§3.3: the data key's packet is in the recipient's header; a decryptor
    tries each of a header's data keys on every segment). The file's bytes are read and
    decrypted once (the segments the edge scan read are reused)."""
    wanted = [
        part
        for piece in pieces
        for part in piece.parts
        if isinstance(part, tuple) and plaintext.cached(*part) is None
    ]
    plaintext.read(htsindex.merge_ranges(wanted))
    sealed = []
    for piece in pieces:
        chunks = [
            part if isinstance(part, bytes) else plaintext.bytes(*part) for part in piece.parts
        ]
        chunks.append(bytes(piece.filler))
        key = plaintext.prepared.keys[0]
        sealed.append(bytes(c4gh.encrypt_segments(key, b"".join(chunks))))
    return sealed


def stream_items(
    spans: list[covering.Span],
    blocks: list[int],
    data_end: int,
    literal: Callable[[int, int, int | None], bytes],
) -> list[Item]:
    """The kept items of merged `spans` (covering.Span): whole blocks as the file's byte
    ranges; a block a span starts or ends inside (a VCF edge block that begins or ends
    inside a line) as the literal `literal(block, start, end)`, a new BGZF block of that
    block's inflated bytes [start, end) (end None: to the block's end)."""
    items: list[Item] = []
    for start, end in spans:
        position, last, inside = start >> 16, end >> 16, end & 0xFFFF
        if start & 0xFFFF:
            block_end = htsindex.block_end(blocks, position, data_end)
            same = last == position and inside
            cut = literal(position, start & 0xFFFF, inside if same else None)
            items.append((position, block_end, cut))
            position = block_end
            if same:
                continue
        if last > position:
            items.append((position, last, None))
        if inside:
            block_end = htsindex.block_end(blocks, last, data_end)
            items.append((last, block_end, literal(last, 0, inside)))
    return items


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
    size, eof_size = block_map.size, block_map.eof_size
    data_end = size - eof_size
    plaintext = _Plaintext(prepared, file.payload_size)

    def fetch(start: int, end: int) -> bytes:
        # The edge scan reads whole segments, so a block's neighbours are read with it.
        plaintext.read([(start, end)])
        return _slice(plaintext.segments, start, end)

    texts = bgzf_records.BlockTexts(fetch, block_map.blocks, data_end, 0)
    spans: list[covering.Span] = []
    if not header_only:
        for reference_name, start, end in regions or [(None, None, None)]:  # type: ignore[list-item]
            try:
                spans += _region_spans(
                    parsed, block_map, texts, reference_name=reference_name, start=start, end=end
                )
            except covering.UnknownReference:
                raise TicketRefused(
                    "NotFound", _unknown_reference(str(reference_name), block_map.references)
                ) from None
    spans = covering.merge_spans([(0, prepared.head_stop), *spans], block_map.blocks, data_end)

    def literal(block: int, start: int, end: int | None) -> bytes:
        if prepared.head_literal and start == 0 and block << 16 | (end or 0) == prepared.head_stop:
            return prepared.head_literal  # the header's own lines, re-encoded once per file
        return bgzf_records.bgzf_blocks(texts.text(block)[start:end])

    items = stream_items(spans, block_map.blocks, data_end, literal)
    if eof_size:
        items.append((data_end, size, None))
    layout = stream_layout(items, size)
    sealed = iter(sealed_bytes([p for p in layout if isinstance(p, Sealed)], plaintext))
    pieces: list[tuple[int, int] | bytes] = []
    for piece in layout:
        if not isinstance(piece, Stored):
            pieces.append(next(sealed))
            continue
        for run_start, run_end in covering.segment_runs(piece.segments, file.payload_size):
            last = pieces[-1] if pieces else None
            if isinstance(last, tuple) and last[1] == run_start:
                pieces[-1] = (last[0], run_end)
            else:
                pieces.append((run_start, run_end))
    edits = edit_list(stream_keeps(layout, size))
    return TicketParts(
        header=recipient_header(keys, secret, recipient_public, edits),
        pieces=pieces,
        plaintext_ranges=htsindex.merge_ranges([(a, b) for a, b, _ in items]),
        format=block_map.format,
    )


def _region_spans(
    parsed: covering.ParsedIndex,
    block_map: BlockMap,
    texts: bgzf_records.BlockTexts,
    *,
    reference_name: str | None,
    start: int | None,
    end: int | None,
) -> list[covering.Span]:
    """The kept spans of one region: trimmed to its first and last overlapping records for
    BAM, BCF and bgzipped VCF (covering.trimmed_spans); the index's blocks for a file whose
    edge records cannot be read (logged: a damaged block), for the regions of a ticket
    that has already inflated covering.TICKET_SCAN_LIMIT bytes at other regions' edges,
    CRAM's containers, and every record without a region. Raises
    covering.UnknownReference."""
    if (
        reference_name is not None
        and texts.spent < covering.TICKET_SCAN_LIMIT
        and isinstance(parsed, htsindex.BinnedIndex)
        and block_map.format in covering.TRIMMED_FORMATS
    ):
        try:
            return covering.trimmed_spans(
                parsed,
                block_map,
                texts,
                reference_name=reference_name,
                start=start or 0,
                end=end if end is not None else htsindex.MAX_POSITION,
            )
        except bgzf_records.RecordUnreadable as exc:
            logger.warning("edge records unreadable, the index's blocks served: %s", exc)
    ranges = covering.region_ranges(
        parsed, block_map, reference_name=reference_name, start=start, end=end
    )
    return [(a << 16, b << 16) for a, b in ranges]
