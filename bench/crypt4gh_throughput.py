"""Crypt4GH encrypt and decrypt of SIZE bytes: the project's engine vs the reference
`crypt4gh` package vs raw ChaCha20-Poly1305 on 64 KiB segments (the limit).

    .venv/bin/python bench/crypt4gh_throughput.py [--size-mib 1024]

Each case runs in its own process so its peak RSS is its own. Every case reads the same
kind of source and writes the same kind of sink: the plaintext (or the Crypt4GH file) is a
file-like object read in 8 MiB chunks, made from one random buffer so memory stays flat
for any size, and the output goes to a file-like sink that drops it. Ours and the reference
both write the header and read it back (decrypting it with the recipient's secret key), so
the clock covers the same work: header, segments, I/O. The raw limit reads and writes the
same way and seals 64 KiB segments with no header.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.common import MIB, peak_rss_mib, table

CHUNK = 8 * MIB


class Source(io.RawIOBase):
    """`size` bytes of repeated random data, read like a file."""

    def __init__(self, size: int, block: bytes) -> None:
        self.left, self.block, self.position = size, block, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        out = 0
        while out < count:
            piece = self.block[self.position : self.position + count - out]
            if not piece:
                self.position = 0
                continue
            buffer[out : out + len(piece)] = piece
            out += len(piece)
            self.position += len(piece)
        self.left -= count
        return count


class Pieces(io.RawIOBase):
    """A file made of `pieces` read in order, without joining them in memory."""

    def __init__(self, pieces) -> None:
        self.pieces, self.current = iter(pieces), memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.current:
            piece = next(self.pieces, None)
            if piece is None:
                return 0
            self.current = memoryview(piece)
        count = min(len(buffer), len(self.current))
        buffer[:count] = self.current[:count]
        self.current = self.current[count:]
        return count


class Sink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return len(data)


def plaintext_source(size: int, block: bytes) -> io.BufferedReader:
    return io.BufferedReader(Source(size, block), buffer_size=CHUNK)


def crypt4gh_source(size: int, header: bytes, sealed: bytes) -> io.BufferedReader:
    """A Crypt4GH file of `size` bytes of plaintext: `header`, then `sealed` repeated."""
    return io.BufferedReader(Pieces([header, *([sealed] * (size // CHUNK))]), buffer_size=CHUNK)


def ours_encrypt(source: io.BufferedReader, sink: io.RawIOBase, public: bytes) -> None:
    """As the upload path does: a header for the recipient, then 8 MiB read, sealed in one
    reused buffer, written."""
    from genomics import c4gh

    key = c4gh.new_data_key()
    sink.write(c4gh.build_header(key, public))
    chunk, buffer = bytearray(CHUNK), bytearray(c4gh.encrypted_size(CHUNK))
    while count := source.readinto(chunk):
        sink.write(c4gh.encrypt_segments(key, memoryview(chunk)[:count], out=buffer))


def ours_decrypt(source: io.BufferedReader, sink: io.RawIOBase, secret: bytes) -> None:
    """Read the header from the stream, open it, then decrypt the payload as it streams."""
    from genomics import c4gh

    prefix = source.peek(4096)
    size = c4gh.header_size(prefix)
    assert size is not None
    header = c4gh.decrypt_header(source.read(size), secret)
    for plaintext in c4gh.decrypt_stream(header.data_keys, iter(lambda: source.read(CHUNK), b"")):
        sink.write(plaintext)


def run_case(case: str, size: int) -> dict[str, float]:
    from crypt4gh import lib as reference
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    from genomics import c4gh

    block = os.urandom(CHUNK)
    secret, public = c4gh.generate_keypair()
    key = c4gh.new_data_key()
    # Decryption reads a file made of one sealed 8 MiB chunk repeated; built off the clock.
    header, sealed = c4gh.build_header(key, public), bytes(c4gh.encrypt_segments(key, block))
    sink = Sink()
    started = time.perf_counter()
    if case == "ours-encrypt":
        ours_encrypt(plaintext_source(size, block), sink, public)
    elif case == "ours-decrypt":
        ours_decrypt(crypt4gh_source(size, header, sealed), sink, secret)
    elif case == "reference-encrypt":
        reference.encrypt([(0, secret, public)], plaintext_source(size, block), sink)
    elif case == "reference-decrypt":
        reference.decrypt([(0, secret, None)], crypt4gh_source(size, header, sealed), sink)
    elif case == "raw-limit":
        cipher = ChaCha20Poly1305(key)
        nonce = os.urandom(12)
        source, chunk = plaintext_source(size, block), bytearray(CHUNK)
        while count := source.readinto(chunk):
            view = memoryview(chunk)[:count]
            for offset in range(0, count, 65536):
                sink.write(cipher.encrypt(nonce, view[offset : offset + 65536], None))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_mib": peak_rss_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--case")
    args = parser.parse_args()
    size = args.size_mib * MIB
    if args.case:
        print(json.dumps(run_case(args.case, size)))
        return
    cases = ["raw-limit", "ours-encrypt", "ours-decrypt", "reference-encrypt", "reference-decrypt"]
    results = {}
    for case in cases:
        output = subprocess.run(
            [sys.executable, __file__, "--size-mib", str(args.size_mib), "--case", case],
            capture_output=True,
            text=True,
            check=True,
        )
        results[case] = json.loads(output.stdout)
    limit = size / results["raw-limit"]["seconds"]
    rows = []
    for case in cases:
        rate = size / results[case]["seconds"]
        reference_rate = (
            size / results[case.replace("ours", "reference")]["seconds"]
            if case.startswith("ours")
            else None
        )
        rows.append(
            [
                case,
                f"{rate / 1e9:.2f} GB/s",
                f"{rate / limit:.0%}",
                f"{rate / reference_rate:.1f}x" if reference_rate else "",
                f"{results[case]['rss_mib']:.0f} MiB",
            ]
        )
    table(
        f"Crypt4GH throughput, {args.size_mib} MiB (targets: >= 5x reference, >= 60% of raw, "
        "RSS < 200 MB)",
        ["case", "throughput", "of raw limit", "vs reference", "peak RSS"],
        rows,
    )


if __name__ == "__main__":
    main()
