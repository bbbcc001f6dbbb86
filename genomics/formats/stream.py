"""Byte streams for the inspectors: plaintext arrives as an iterator of chunks (decrypted
segments) and must never touch disk, so everything here works on iterators in memory."""

from __future__ import annotations

import contextlib
import os
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from genomics.formats.ends import truncated
from genomics.formats.errors import FormatError

GZIP_MAGIC = b"\x1f\x8b"
T = TypeVar("T")


class Peekable:
    """An iterator of byte chunks whose first bytes can be looked at before reading."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._head = b""

    def peek(self, size: int) -> bytes:
        while len(self._head) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._head += chunk
        return self._head[:size]

    def __iter__(self) -> Iterator[bytes]:
        if self._head:
            head, self._head = self._head, b""
            yield head
        yield from self._chunks


def gunzip(chunks: Iterable[bytes], *, kind: str) -> Iterator[bytes]:
    """Decompress gzip, including the multi-member gzip that BGZF (bgzip) writes; a stream
    that stops inside a member (before its CRC32/ISIZE trailer, RFC 1952 §2.3) is refused
    as truncated. `kind` names the format in errors."""
    decompressor = zlib.decompressobj(wbits=31)
    fed = 0  # bytes given to the current member
    for chunk in chunks:
        data = chunk
        while data:
            fed += len(data)
            try:
                out = decompressor.decompress(data)
            except zlib.error as exc:
                raise FormatError(f"The {kind} file is not valid gzip: {exc}.") from exc
            if out:
                yield out
            if decompressor.eof:
                data = decompressor.unused_data
                decompressor, fed = zlib.decompressobj(wbits=31), 0
            else:
                data = b""
    if fed and not decompressor.eof:
        raise truncated(kind, "its gzip stream stops inside a block, before the gzip trailer")


def through_pipe(chunks: Iterable[bytes], reader: Callable[[str], T]) -> T:
    """Run `reader("/dev/fd/N")` on the bytes of `chunks`, fed through an OS pipe by a
    thread: how htslib (which opens paths) reads a stream without a temporary file."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def feed() -> None:
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                for chunk in chunks:
                    pipe.write(chunk)
        except BrokenPipeError:
            pass  # the reader stopped early; the caller drains the rest itself
        except BaseException as exc:
            failure.append(exc)

    feeder = threading.Thread(target=feed, name="htslib-feed", daemon=True)
    feeder.start()
    try:
        result = reader(f"/dev/fd/{read_fd}")
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.close(read_fd)
        feeder.join()
        # The feed's own error (the stream is truncated, a segment failed to decrypt) is
        # the cause of whatever htslib then made of the short input: report the cause.
        if failure:
            raise failure[0] from exc
        raise
    with contextlib.suppress(OSError):
        os.close(read_fd)
    feeder.join()
    if failure:
        raise failure[0]
    return result
