"""End-of-file markers: how a container that signals its end proves it is whole.

A file cut at a block or container boundary is otherwise valid up to the cut, so htslib
(and our VCF reader) would count the records it holds and the file would be published as
complete. Each container below writes a fixed marker as its last bytes; a stream whose
last bytes are not that marker is refused as truncated.

- BGZF (BAM, BCF, bgzipped VCF/FASTQ/...): the 28-byte empty block, SAM/BAM spec §4.1.2
  ("End-of-file marker").
- CRAM 2.1 and 3.x: the EOF container, CRAM spec §9 (30 bytes in 2.1, 38 in 3.x).
- Plain gzip: every member ends with its CRC32/ISIZE trailer (RFC 1952 §2.3), checked by
  `stream.gunzip`. A plain multi-member gzip cut exactly between members cannot be told
  from a whole one: gzip has no end-of-stream marker.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from genomics.formats.errors import FormatError

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
CRAM_EOF = {
    2: bytes.fromhex("0b000000ffffffff0fe0454f460000000001000001000606010001000100"),
    3: bytes.fromhex(
        "0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b"
    ),
}


def truncated(kind: str, detail: str) -> FormatError:
    """The one wording of a truncation, whatever found it (our readers or htslib)."""
    return FormatError(
        f"The {kind} file is truncated: {detail}. Records may be missing; upload the whole file."
    )


def require_marker(
    chunks: Iterable[bytes], marker: bytes, *, kind: str, what: str
) -> Iterator[bytes]:
    """Pass `chunks` through; once they are exhausted, raise `FormatError` unless the last
    bytes were `marker`. Keeps only the last len(marker) bytes, so any size streams."""
    tail = b""
    for chunk in chunks:
        if chunk:
            tail = (tail + chunk[-len(marker) :])[-len(marker) :]  # never copies a whole chunk
        yield chunk
    if tail != marker:
        raise truncated(kind, f"it ends without the {what}")


def end_checked(
    chunks: Iterable[bytes], *, kind: str, compression: str, head: bytes
) -> Iterable[bytes]:
    """`chunks` wrapped in the end check its container calls for (see the module doc);
    `head` is the stream's first bytes, as sniffed; `compression` is the sniffer's ("bgzf",
    "gzip" or "")."""
    if compression == "bgzf":
        return require_marker(chunks, BGZF_EOF, kind=kind, what="BGZF end-of-file block")
    if kind == "CRAM":
        major, minor = (head[4], head[5]) if len(head) > 5 else (0, 0)
        if (major, minor) < (2, 1):
            # CRAM 1.0 and 2.0 have no EOF container; htslib reads them, but we cannot tell
            # a whole one from a cut one, and nobody has written them since 2014.
            raise FormatError(
                f"CRAM version {major}.{minor} is not supported "
                "(it cannot show that it is whole); convert it with samtools view -C."
            )
        marker = CRAM_EOF.get(major)
        if marker is None:
            raise FormatError(f"CRAM version {major}.{minor} is not supported (2.1 and 3.x are).")
        return require_marker(chunks, marker, kind=kind, what="CRAM end-of-file container")
    return chunks


def is_bgzf(head: bytes) -> bool:
    """BGZF: gzip with FEXTRA and a "BC" subfield (SAM/BAM spec §4.1)."""
    return len(head) >= 14 and head[3] & 4 == 4 and head[12:14] == b"BC"
