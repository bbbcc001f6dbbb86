"""htsget tickets over Crypt4GH (worker side): which encrypted segments hold a region, and
a header for the recipient whose data edit list keeps just the region's blocks.

The stream a ticket describes is (Crypt4GH v1 §3.2.3 edit lists, as htsget-rs's Crypt4GH
extension serves it):

    header for the recipient: the file's data key packet(s) + one edit list packet,
        written with the archive key as writer (so `crypt4gh decrypt --sender_pk
        archive.pub` still accepts every packet)
    the encrypted 64 KiB segments that hold the format's header blocks and the region's
        blocks, in file order, copied from the stored payload untouched
    the EOF block as a segment of its own

Decrypted, the edit list skips everything in those segments but the wanted byte ranges,
so the output is the file's header blocks, the region's BGZF blocks (or CRAM containers)
and the EOF marker: a valid BGZF/BAM/CRAM file that samtools and bcftools read.

Which blocks hold a region is genomics.services.covering's, shared with the region
objects of tiers. Only the worker holds the archive key: the index is decrypted there,
never in the web. What every ticket of a file needs beyond the index (the data keys of its
stored header, the EOF marker) is derived on its first ticket and kept in this process's
memory only, for `INDEX_CACHE_SIZE` files, so a ticket costs one query and no decryption;
the grant is checked on every ticket.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from django.db.models import Exists, OuterRef

from genomics import c4gh, htsindex
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
    """What to serve: `header`, then the payload byte ranges (whole encrypted segments,
    merged), then `trailer`; and the plaintext ranges the stream decrypts to."""

    header: bytes  # the recipient's Crypt4GH header and the header blocks' segments
    payload_ranges: list[tuple[int, int]]
    plaintext_ranges: list[tuple[int, int]]
    format: str
    trailer: bytes = b""  # the EOF marker's segment


@dataclass(frozen=True)
class _Prepared:
    """What every ticket of one file needs, derived once per ticketer process: the parsed
    index and block map, where the header blocks end, the data keys of the file's stored
    header, and the EOF marker's plaintext (a fixed marker: BGZF's empty block, CRAM's EOF
    container), so that a ticket costs no decryption of the index, the header or the
    payload."""

    parsed: covering.ParsedIndex
    block_map: BlockMap
    head_end: int
    keys: list[bytes]
    eof: bytes


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
    eof_start = block_map.size - block_map.eof_size
    eof = _plaintext_range(file, keys, eof_start, block_map.size) if block_map.eof_size else b""
    prepared = _Prepared(parsed, block_map, covering.header_end(block_map), keys, eof)
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


def segments_of(
    ranges: list[tuple[int, int]], plaintext_size: int, payload_size: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The payload ranges (whole encrypted segments, merged) holding the plaintext
    `ranges`, and where each range lies in the plaintext of those segments as served."""
    segments = covering.segments_holding(ranges)
    position: dict[int, int] = {}  # segment -> offset of its plaintext in the served run
    served = 0
    for index in segments:
        position[index] = served
        served += min(SEG, plaintext_size - index * SEG)
    kept = [
        (position[start // SEG] + start % SEG, position[start // SEG] + start % SEG + end - start)
        for start, end in ranges
    ]
    payload = covering.segment_runs(segments, payload_size)
    return payload, [*kept, (served, served)]  # the last item: the run's length


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


def _plaintext_range(file: GenomicFile, keys: list[bytes], start: int, end: int) -> bytes:
    """Plaintext bytes [start, end) of the stored payload, decrypting whole segments."""
    ((offset, plain),) = covering.read_segments(file, keys, [(start, end)])
    return plain[start - offset : end - offset]


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

    The served stream is: the recipient's header; the stored segments holding the file's
    header blocks and the region's blocks; the EOF marker as a (short, last) segment of
    its own, encrypted here under the file's data key with a fresh nonce, so the file's
    last 64 KiB segment is not served for its 28 bytes.

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
                    "NotFound", f"The file has no reference named {reference_name}."
                ) from None
    ranges = htsindex.merge_ranges(ranges)
    head_end = prepared.head_end
    eof_start = block_map.size - block_map.eof_size
    # The header blocks come from the stored segments: a segment before the last must be
    # a whole 64 KiB (Crypt4GH §3.3), so only the EOF can be a short segment of its own,
    # and only when the file's own last (short) segment is not served anyway.
    served = htsindex.merge_ranges([(0, head_end), *ranges])
    last_segment = (block_map.size - 1) // SEG
    eof = b""
    if (served and (served[-1][1] - 1) // SEG == last_segment) or not block_map.eof_size:
        served = htsindex.merge_ranges([*served, (eof_start, block_map.size)])
    else:
        eof = prepared.eof
    payload, kept = segments_of(served, block_map.size, file.payload_size)
    run_length = kept.pop()[1]
    edits = edit_list([*kept, (run_length, run_length + len(eof))])
    return TicketParts(
        header=recipient_header(keys, secret, recipient_public, edits),
        payload_ranges=payload,
        plaintext_ranges=[*served, *([(eof_start, block_map.size)] if eof else [])],
        format=block_map.format,
        trailer=bytes(c4gh.encrypt_segments(keys[0], eof)),
    )
