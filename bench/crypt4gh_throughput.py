"""Crypt4GH encrypt and decrypt of SIZE bytes: the project's engine vs the reference
`crypt4gh` package vs raw ChaCha20-Poly1305 on 64 KiB segments (the limit).

    .venv/bin/python bench/crypt4gh_throughput.py [--size-mib 1024]

Each case runs in its own process so its peak RSS is its own. Data streams through in
8 MiB chunks made from one random buffer, so memory stays flat for any size.
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


def chunks(size: int, block: bytes):
    for offset in range(0, size, CHUNK):
        yield memoryview(block)[: min(CHUNK, size - offset)]


def run_case(case: str, size: int) -> dict[str, float]:
    from crypt4gh import lib as reference
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    from genomics import c4gh

    block = os.urandom(CHUNK)
    secret, public = c4gh.generate_keypair()
    key = c4gh.new_data_key()
    started = time.perf_counter()
    if case == "ours-encrypt":
        buffer = bytearray(c4gh.encrypted_size(CHUNK))
        for chunk in chunks(size, block):
            c4gh.encrypt_segments(key, chunk, out=buffer)
    elif case == "ours-decrypt":
        sealed = c4gh.encrypt_segments(key, block)  # 128 segments, decrypted repeatedly
        decryptor = c4gh.SegmentDecryptor([key])
        started = time.perf_counter()
        for _ in range(0, size, CHUNK):
            for _plain in decryptor.feed_segments(sealed):
                pass
    elif case == "reference-encrypt":
        reference.encrypt([(0, secret, public)], io.BufferedReader(Source(size, block)), Sink())
    elif case == "reference-decrypt":
        header = c4gh.build_header(key, public)
        sealed = c4gh.encrypt_segments(key, block)
        stream = io.BufferedReader(Pieces([header, *([sealed] * (size // CHUNK))]))
        started = time.perf_counter()
        reference.decrypt([(0, secret, None)], stream, Sink())
    elif case == "raw-limit":
        cipher = ChaCha20Poly1305(key)
        nonce = os.urandom(12)
        for chunk in chunks(size, block):
            for offset in range(0, len(chunk), 65536):
                cipher.encrypt(nonce, chunk[offset : offset + 65536], None)
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
