"""The layout of an htsget ticket's Crypt4GH stream (genomics/services/tickets.py
`stream_layout`), checked against the reference `crypt4gh` decryptor without a database:
stored segments copied from an encrypted payload, sealed pieces encrypted as their
contract says (the file's bytes, literal bytes standing in for a re-encoded edge block,
skipped zero padding), one header with the edit list. Whatever the header's size, the
region's place and the literals', the reference decrypts the stream to exactly the kept
bytes, and the bytes served exceed them by less than 64 KiB a sealed run."""

from __future__ import annotations

import io
import random

import pytest
from crypt4gh import lib as reference

from genomics import c4gh
from genomics.services import covering, tickets

SEG = c4gh.SEGMENT_SIZE
EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
WRITER = c4gh.generate_keypair()  # the archive's, as the ticketer writes the header
READER = c4gh.generate_keypair()  # the researcher's


@pytest.fixture(scope="module")
def stored() -> tuple[bytes, bytes, bytes]:
    """(plaintext, data key, its stored encryption): ~12 segments ending with an EOF."""
    rng = random.Random(17)
    plaintext = rng.randbytes(12 * SEG + 3210) + EOF
    key = c4gh.new_data_key()
    return plaintext, key, bytes(c4gh.encrypt_segments(key, plaintext))


def serve(
    stored: tuple[bytes, bytes, bytes], items: list[tickets.Item]
) -> tuple[bytes, bytes, int]:
    """(the recipient's header, the stream's body, the plaintext bytes served)."""
    plaintext, key, payload = stored
    size = len(plaintext)
    pieces = tickets.stream_layout(items, size)
    body, served = b"", 0
    for piece in pieces:
        if isinstance(piece, tickets.Stored):
            for start, end in covering.segment_runs(piece.segments, len(payload)):
                body += payload[start:end]
            served += sum(min(SEG, size - i * SEG) for i in piece.segments)
            continue
        sealed = b"".join(
            part if isinstance(part, bytes) else plaintext[part[0] : part[1]]
            for part in piece.parts
        )
        sealed += bytes(piece.filler)
        body += bytes(c4gh.encrypt_segments(key, sealed))
        served += len(sealed)
    edits = tickets.edit_list(tickets.stream_keeps(pieces, size))
    return edits_header(key, edits), body, served


def region_items(size: int, head_end: int, ranges: list[tuple[int, int]]) -> list[tickets.Item]:
    """The header, the region's ranges and the EOF, as a ticket keeps them."""
    return [(0, head_end, None), *((a, b, None) for a, b in ranges), (size - len(EOF), size, None)]


def expected(plaintext: bytes, items: list[tickets.Item]) -> bytes:
    return b"".join(literal if literal is not None else plaintext[a:b] for a, b, literal in items)


def edits_header(key: bytes, edits: list[int]) -> bytes:
    """A header for the reader: the data key and the edit list (Crypt4GH §3.2.2-3)."""
    return c4gh.seal_header(
        [c4gh.data_encryption_packet(key), c4gh.edit_list_packet(edits)],
        writer_secret=WRITER[0],
        recipient_public=READER[1],
    )


def decrypted(header: bytes, body: bytes) -> bytes:
    out = io.BytesIO()
    reference.decrypt([(0, READER[0], None)], io.BytesIO(header + body), out, WRITER[1])
    return out.getvalue()


def padding_allowed(ranges: list[tuple[int, int]]) -> int:
    """Less than 64 KiB for one range (the padding of the sealed head); a gap between two
    ranges (several regions) costs the partial stored segments at its two edges too."""
    return SEG * (2 * len(ranges) - 1 if ranges else 1)


CASES = [
    # (header end, region ranges): small and multi-segment headers, regions starting in
    # the header's last segment or far after it, ending on a segment boundary, reaching
    # the EOF (a whole-file ticket), spanning gaps, and no region (class=header).
    (500, [(200_000, 400_000)]),
    (500, [(30_000, 400_000)]),
    (500, [(500, 12 * SEG + 3210)]),
    (500, [(200_000, 6 * SEG)]),
    (500, [(200_000, 210_000)]),
    (500, [(70_000, 140_000)]),
    (500, [(100_000, 150_000), (600_000, 700_000)]),
    (500, [(700_000, 12 * SEG + 3210)]),
    (500, []),
    (3 * SEG + 777, [(5 * SEG + 10, 9 * SEG + 99)]),
    (3 * SEG + 777, [(3 * SEG + 900, 4 * SEG)]),
    (3 * SEG + 777, []),
    (2 * SEG, [(2 * SEG + 5000, 5 * SEG + 17)]),
    (2 * SEG, [(7 * SEG, 12 * SEG + 3210)]),
]


@pytest.mark.parametrize(("head_end", "ranges"), CASES)
def test_the_stream_decrypts_to_the_kept_bytes_with_less_than_64_kib_more_served(
    stored: tuple[bytes, bytes, bytes], head_end: int, ranges: list[tuple[int, int]]
) -> None:
    plaintext = stored[0]
    items = region_items(len(plaintext), head_end, ranges)
    header, body, served = serve(stored, items)
    kept = expected(plaintext, items)
    assert decrypted(header, body) == kept
    assert len(kept) <= served < len(kept) + padding_allowed(ranges)
    if ranges == [(500, 12 * SEG + 3210)]:  # the whole file: the stored payload itself
        assert body == stored[2] and served == len(kept)


def test_random_regions_decrypt_to_their_bytes(stored: tuple[bytes, bytes, bytes]) -> None:
    rng = random.Random(3)
    data_end = len(stored[0]) - len(EOF)
    for _ in range(40):
        head_end = rng.choice([1, 300, SEG - 1, SEG, SEG + 1, 2 * SEG + 4321])
        cuts = sorted(rng.sample(range(head_end, data_end + 1), rng.choice([2, 4])))
        ranges = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2)]
        ranges = [(a, b) for a, b in ranges if b > a]
        items = region_items(len(stored[0]), head_end, ranges)
        header, body, served = serve(stored, items)
        kept = expected(stored[0], items)
        assert decrypted(header, body) == kept, (head_end, ranges)
        assert served < len(kept) + padding_allowed(ranges), (head_end, ranges)


def with_literals(items: list[tickets.Item], rng: random.Random, blocks: int) -> list[tickets.Item]:
    """`items` with up to `blocks` file ranges' first or last bytes (a "block" of up to
    64 KiB) replaced by literal bytes of another length, as a re-encoded edge block is."""
    out: list[tickets.Item] = []
    for start, end, literal in items:
        if literal is not None or blocks == 0 or end - start < 2 or start == 0:
            out.append((start, end, literal))
            continue
        blocks -= 1
        block = rng.randrange(1, min(end - start, 65536) + 1)
        text = rng.randbytes(rng.randrange(1, 70_000))
        if rng.random() < 0.5:  # the range's first block is cut
            out += [(start, start + block, text), (start + block, end, None)]
        else:  # its last
            out += [(start, end - block, None), (end - block, end, text)]
    return [(a, b, literal) for a, b, literal in out if b > a]


LITERAL_CASES = [
    # (header end, region ranges): a literal at a region's start, at its end, both in one
    # segment, on both sides of a gap between regions, next to a stored segment boundary.
    (500, [(200_000, 400_000)]),
    (500, [(70_000, 140_000)]),
    (3 * SEG + 777, [(5 * SEG + 10, 9 * SEG + 99)]),
    (2 * SEG, [(2 * SEG + 5000, 5 * SEG + 17)]),
    (500, [(100_000, 150_000), (600_000, 700_000)]),
    (500, [(SEG, 3 * SEG), (5 * SEG, 7 * SEG)]),
]


@pytest.mark.parametrize(("head_end", "ranges"), LITERAL_CASES)
def test_literal_blocks_lie_in_sealed_pieces_and_the_stream_decrypts_to_them(
    stored: tuple[bytes, bytes, bytes], head_end: int, ranges: list[tuple[int, int]]
) -> None:
    """A re-encoded edge block is bytes the stored file lacks: it is sealed, no stored
    segment serves a byte of the block it replaces, and the edit list keeps it."""
    plaintext = stored[0]
    rng = random.Random(head_end + len(ranges))
    for _ in range(4):
        items = with_literals(region_items(len(plaintext), head_end, ranges), rng, 4)
        assert any(literal is not None for _, _, literal in items)
        header, body, served = serve(stored, items)
        kept = expected(plaintext, items)
        assert decrypted(header, body) == kept, items
        sealed_runs = len(ranges)  # each but the last may be padded
        assert len(kept) <= served < len(kept) + SEG * max(sealed_runs, 1), items
        replaced = [(a, b) for a, b, literal in items if literal is not None]
        for piece in tickets.stream_layout(items, len(plaintext)):
            if isinstance(piece, tickets.Stored):
                for index in piece.segments:
                    assert all(b <= index * SEG or a >= (index + 1) * SEG for a, b in replaced)
