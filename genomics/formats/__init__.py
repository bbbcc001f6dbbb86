"""Format detection, validation and metadata for the vault's ingest.

`inspect(chunks, filename=...)` reads plaintext given as an iterator of byte chunks (never
a file: plaintext must not touch disk) and returns an `Inspection` whose `metadata` holds
only what may be published: format and version, compression, reference build, sample
count, record count, contig names. It raises `FormatError` with a sentence for the donor.
"""

from __future__ import annotations

from collections.abc import Iterable

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

__all__ = ["FormatError", "Inspection", "inspect"]


def inspect(chunks: Iterable[bytes], *, filename: str = "") -> Inspection:
    """Reads `chunks` to the end: a container's end marker is its last bytes (`ends`), so
    no file is described before it is known to be whole. Raises `FormatError`."""
    stream = Peekable(chunks)
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
