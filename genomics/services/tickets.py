"""htsget tickets over Crypt4GH (worker side): which encrypted segments hold a region, and
a header for the recipient whose data edit list keeps just the region's blocks.

The stream a ticket describes is (Crypt4GH v1 §3.2.3 edit lists, as htsget-rs's Crypt4GH
extension serves it):

    header for the recipient: the file's data key packet(s) + one edit list packet,
        written with the archive key as writer (so `crypt4gh decrypt --sender_pk
        archive.pub` still accepts every packet)
    the encrypted 64 KiB segments that hold the format's header, the region's blocks and
        the EOF block, in file order, copied from the stored payload untouched

Decrypted, the edit list skips everything in those segments but the wanted byte ranges,
so the output is the file's header blocks, the region's BGZF blocks (or CRAM containers)
and the EOF marker: a valid BGZF/BAM/CRAM file that samtools and bcftools read.

Only the worker holds the archive key: the index is decrypted here (and kept decrypted in
this process's memory only, for `INDEX_CACHE_SIZE` files), never in the web.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from genomics import c4gh, htsindex
from genomics.archive_secret import archive_secret_key
from genomics.models import FileIndex, GenomicFile, Grant
from genomics.services.indexes import BlockMap, file_index_read

INDEX_CACHE_SIZE = 64
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
    """A recipient's header (with its edit list), the payload byte ranges to serve after
    it (whole encrypted segments, merged), and what the stream decrypts to."""

    header: bytes
    payload_ranges: list[tuple[int, int]]
    plaintext_ranges: list[tuple[int, int]]
    format: str


_cache: OrderedDict[tuple[str, int], tuple[object, BlockMap]] = OrderedDict()
_cache_lock = Lock()


def _parsed_index(index: FileIndex, secret: bytes) -> tuple[object, BlockMap]:
    key = (str(index.file_id), index.pk)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    data, block_map = file_index_read(index=index, secret=secret)
    parsed: object
    if index.index_format == "CRAI":
        parsed = htsindex.parse_crai(data)
    else:
        parsed = htsindex.parse_binned(data, index.index_format)
    with _cache_lock:
        _cache[key] = (parsed, block_map)
        while len(_cache) > INDEX_CACHE_SIZE:
            _cache.popitem(last=False)
    return parsed, block_map


def region_ranges(
    parsed: object,
    block_map: BlockMap,
    *,
    reference_name: str | None,
    start: int | None,
    end: int | None,
    header_only: bool,
) -> list[tuple[int, int]]:
    """Plaintext byte ranges [start, end) of the file to serve: header blocks, the
    region's blocks, and the EOF marker. Raises TicketRefused (NotFound for a reference
    the file does not have)."""
    size, eof = block_map.size, block_map.eof_size
    data_end = size - eof
    header_voffset = block_map.header_end
    header_block, inside = header_voffset >> 16, header_voffset & 0xFFFF
    header_end = (
        htsindex.block_end(block_map.blocks, header_block, data_end) if inside else header_block
    )
    ranges = [(0, header_end), (data_end, size)]
    if header_only:
        return htsindex.merge_ranges(ranges)
    if reference_name is None:
        return [(0, size)]
    names = getattr(parsed, "names", None) or []
    # A tabix index numbers only the contigs that have records, in its own order.
    order = names or block_map.references
    if reference_name not in order:
        if reference_name in block_map.references:
            return htsindex.merge_ranges(ranges)  # a known contig without records
        raise TicketRefused("NotFound", f"The file has no reference named {reference_name}.")
    reference = order.index(reference_name)
    low = start or 0
    high = end if end is not None else htsindex.MAX_POSITION
    if isinstance(parsed, htsindex.BinnedIndex):
        chunks = htsindex.binned_chunks(parsed, reference, low, high)
        ranges += htsindex.chunks_to_ranges(chunks, block_map.blocks, data_end)
    else:
        assert isinstance(parsed, list)
        ranges += htsindex.crai_ranges(parsed, block_map.blocks, reference, low, high, data_end)
    return htsindex.merge_ranges(ranges)


def segments_and_edit_list(
    ranges: list[tuple[int, int]], plaintext_size: int, payload_size: int
) -> tuple[list[tuple[int, int]], list[int]]:
    """The payload ranges (whole encrypted segments) holding the plaintext `ranges`, and
    the edit list (alternate skip and keep lengths, starting with a skip, Crypt4GH §3.2.3)
    that keeps exactly `ranges` out of those segments' plaintext."""
    segments: list[int] = []
    for start, end in ranges:
        for index in range(start // SEG, (end - 1) // SEG + 1):
            if not segments or index > segments[-1]:
                segments.append(index)
    position: dict[int, int] = {}  # segment -> offset of its plaintext in the served stream
    served = 0
    for index in segments:
        position[index] = served
        served += min(SEG, plaintext_size - index * SEG)
    edits: list[int] = []
    cursor = 0
    for start, end in ranges:
        served_start = position[start // SEG] + start % SEG
        served_end = served_start + (end - start)
        edits += [served_start - cursor, end - start]
        cursor = served_end
    payload: list[tuple[int, int]] = []
    for index in segments:
        seg_start, seg_end = index * CSEG, min((index + 1) * CSEG, payload_size)
        if payload and payload[-1][1] == seg_start:
            payload[-1] = (payload[-1][0], seg_end)
        else:
            payload.append((seg_start, seg_end))
    return payload, edits


def recipient_header(
    file_header: bytes, secret: bytes, recipient_public: bytes, edit_list: list[int]
) -> bytes:
    """The file's data key packets and one edit list packet, all for `recipient_public`,
    with the archive as writer (Crypt4GH §3.2.2 and §3.2.3)."""
    decrypted = c4gh.decrypt_header(file_header, secret)
    keys = [c4gh.data_encryption_packet(key) for key in decrypted.data_keys]
    return c4gh.seal_header(
        [*keys, c4gh.edit_list_packet(edit_list)],
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

    The recipient must already hold a grant of the file (a Grant row, which only the worker
    writes, after checking the escrow): a ticket discloses nothing a grant did not.
    Raises TicketRefused: NotFound (no such file, reference, or no grant for this key),
    UnsupportedFormat (a file that cannot be sliced or is not indexed yet)."""
    file = GenomicFile.objects.select_related("archive_key").filter(pk=file_id).first()
    if file is None or file.archive_key is None or file.header is None:
        raise TicketRefused("NotFound", "No such file.")
    if not Grant.objects.filter(file=file, recipient_public_key=recipient_public).exists():
        raise TicketRefused("NotFound", "No grant of this file for your key.")
    index = FileIndex.objects.filter(file=file).first()
    if index is None:
        raise TicketRefused(
            "UnsupportedFormat",
            "This file has no index (yet): it can only be fetched whole. A VCF must be "
            "compressed with bgzip to be sliced.",
        )
    secret = archive_secret_key(file.archive_key)
    parsed, block_map = _parsed_index(index, secret)
    ranges: list[tuple[int, int]] = []
    for reference_name, start, end in regions or [(None, None, None)]:  # type: ignore[list-item]
        ranges += region_ranges(
            parsed,
            block_map,
            reference_name=reference_name,
            start=start,
            end=end,
            header_only=header_only,
        )
    ranges = htsindex.merge_ranges(ranges)
    payload, edits = segments_and_edit_list(ranges, block_map.size, file.payload_size)
    header = recipient_header(bytes(file.header), secret, recipient_public, edits)
    return TicketParts(header, payload, ranges, block_map.format)
