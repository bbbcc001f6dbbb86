"""Format detection, validation and metadata for the vault's ingest.

`inspect(chunks, filename=...)` reads plaintext given as an iterator of byte chunks (never
a file: plaintext must not touch disk) and returns an `Inspection` whose `metadata` holds
only what may be published: format and version, compression, reference build, sample
count, record count, contig names. It raises `FormatError` with a sentence for the donor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from genomics.formats.consumer import inspect_consumer
from genomics.formats.ends import end_checked
from genomics.formats.errors import FormatError
from genomics.formats.htslib import inspect_alignments, inspect_bcf
from genomics.formats.result import Inspection
from genomics.formats.sequences import inspect_fasta, inspect_fastq
from genomics.formats.sniff import sniff
from genomics.formats.stream import Peekable, gunzip
from genomics.formats.text import line_ends_checked, without_bom
from genomics.formats.vcf import inspect_vcf
from genomics.formats.zipped import ZIP_MAGIC, only_member

# The largest file a ZIP may inflate to (the vault's default upload limit; ingest passes
# its own UPLOAD_MAX_BYTES): what stops a ZIP bomb from running ingest for hours.
DEFAULT_MAX_UNZIPPED_BYTES = 50 * 1024**3

__all__ = ["FormatError", "Inspection", "inspect"]


def inspect(
    chunks: Iterable[bytes],
    *,
    filename: str = "",
    max_unzipped_bytes: int = DEFAULT_MAX_UNZIPPED_BYTES,
) -> Inspection:
    """Reads `chunks` to the end: a container's end marker is its last bytes (`ends`), so
    no file is described before it is known to be whole. A ZIP holding one file (a 23andMe
    download) is read through to that file (`zipped`): its metadata says `container: zip`,
    and `content_sha256`/`content_size` are the file's. Raises `FormatError`."""
    stream = Peekable(chunks)
    if stream.peek(len(ZIP_MAGIC)) == ZIP_MAGIC:
        digest = hashlib.sha256()
        size = 0

        def member() -> Iterator[bytes]:
            nonlocal size
            for chunk in only_member(stream, max_bytes=max_unzipped_bytes):
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        # The archive's name (genome_Jane_Doe_….zip) says nothing of what is inside.
        result = _whole(Peekable(member()), filename="")
        result.container, result.content_sha256 = "zip", digest.hexdigest()
        result.content_size = size
        return result
    return _whole(stream, filename=filename)


def _whole(stream: Peekable, *, filename: str) -> Inspection:
    kind, compressed = sniff(stream, filename=filename)
    checked = end_checked(stream, kind=kind, compression=compressed, head=stream.peek(64))
    result = _inspect(checked, kind=kind, compressed=compressed)
    for _ in checked:  # an inspector may stop before the end marker (htslib at its EOF block)
        pass
    return result


def _inspect(stream: Iterable[bytes], *, kind: str, compressed: str) -> Inspection:
    if kind in {"BAM", "CRAM"}:
        return inspect_alignments(stream, kind=kind)
    if kind == "BCF":
        return inspect_bcf(stream)
    text: Iterable[bytes] = gunzip(stream, kind=kind) if compressed else stream
    text = without_bom(text, kind=kind)  # one rule per format: text.RULES
    compression = "gzip" if compressed else "none"
    if kind == "SAM":
        text = line_ends_checked(text, kind=kind)
        return inspect_alignments(text, kind=kind, compression=compressed or "none")
    if kind == "VCF":
        return inspect_vcf(text, compression="bgzf" if compressed == "bgzf" else compression)
    if kind == "FASTQ":
        return inspect_fastq(text, compression=compression)
    if kind == "FASTA":
        return inspect_fasta(text, compression=compression)
    return inspect_consumer(text, compression=compression, flavour=kind)
