"""The layout of an htsget ticket's Crypt4GH stream (genomics/services/tickets.py
`stream_layout`), checked against the reference `crypt4gh` decryptor without a database:
stored segments copied from an encrypted payload, sealed pieces encrypted as their
contract says (the file's bytes, skipped zero padding, the EOF marker), one header with the
edit list. Whatever the header's size and the region's place, the reference decrypts the
stream to exactly the kept bytes, and the bytes served exceed them by less than 64 KiB."""

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
    stored: tuple[bytes, bytes, bytes], head_end: int, ranges: list[tuple[int, int]]
) -> tuple[bytes, bytes, int]:
    """(the recipient's header, the stream's body, the plaintext bytes served)."""
    plaintext, key, payload = stored
    size = len(plaintext)
    pieces, stored_kept = tickets.stream_layout(head_end, ranges, size, len(EOF))
    body, served = b"", 0
    for piece in pieces:
        if isinstance(piece, tickets.Stored):
            for start, end in covering.segment_runs(piece.segments, len(payload)):
                body += payload[start:end]
            served += sum(min(SEG, size - i * SEG) for i in piece.segments)
            continue
        sealed = b"".join(plaintext[a:b] for a, b in piece.ranges) + bytes(piece.filler)
        sealed += EOF if piece.eof else b""
        body += bytes(c4gh.encrypt_segments(key, sealed))
        served += len(sealed)
    edits = tickets.edit_list(tickets.stream_keeps(pieces, stored_kept, size, len(EOF)))
    return edits_header(key, edits), body, served


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
    header, body, served = serve(stored, head_end, ranges)
    kept = b"".join(plaintext[a:b] for a, b in [(0, head_end), *ranges]) + EOF
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
        header, body, served = serve(stored, head_end, ranges)
        kept = b"".join(stored[0][a:b] for a, b in [(0, head_end), *ranges]) + EOF
        assert decrypted(header, body) == kept, (head_end, ranges)
        assert served < len(kept) + padding_allowed(ranges), (head_end, ranges)
