"""BAM, CRAM, SAM and BCF through htslib (pysam), fed from memory through a pipe.

htslib validates these formats far better than anything we could write, and it reads a
pipe as well as a file: the plaintext streams through `/dev/fd/N` and never touches disk.
CRAM records are counted without decoding bases, so no reference sequence is needed (and
htslib is told not to fetch one over the network).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pysam

from genomics.formats import reference
from genomics.formats.errors import FormatError
from genomics.formats.result import Inspection
from genomics.formats.stream import through_pipe

pysam.set_verbosity(0)  # htslib's own messages go to stderr; we raise ours instead
# Never let htslib look a CRAM reference up online (it would try the EBI by default).
os.environ.setdefault("REF_PATH", ":")
os.environ.setdefault("REF_CACHE", ":")
# CRAM: decode reference name and position only (no sequence, so no reference needed).
_CRAM_FIELDS = ["required_fields=0x0c"]  # SAM_RNAME | SAM_POS


def inspect_alignments(chunks: Iterable[bytes], *, kind: str, compression: str = "") -> Inspection:
    """BAM, CRAM or SAM: reads counted, contigs and build from the @SQ header lines.
    `compression` is what the sniffer found (a SAM arrives here already decompressed).

    Read group sample names (@RG SM) and read names are never looked at for output.
    """

    where = _Where()

    def read(path: str) -> Inspection:
        options = _CRAM_FIELDS if kind == "CRAM" else None
        with pysam.AlignmentFile(path, check_sq=False, format_options=options) as alignments:
            header = alignments.header.to_dict()
            # pysam gives a headerless SAM the header text "\n": count real lines only.
            where.header_lines = sum(
                line.startswith("@") for line in str(alignments.header).splitlines()
            )
            lengths = [(str(sq.get("SN", "")), sq.get("LN")) for sq in header.get("SQ", [])]
            label = _version_label(kind, str(header.get("HD", {}).get("VN", "")), alignments)
            used: dict[str, None] = {}
            for segment in alignments.fetch(until_eof=True):
                where.records += 1
                if segment.reference_id >= 0:
                    used[alignments.get_reference_name(segment.reference_id)] = None
            count = where.records
        return Inspection(
            format=kind,
            format_version=label,
            compression=compression or {"BAM": "bgzf", "CRAM": "cram", "SAM": "none"}[kind],
            reference_build=reference.build_from_lengths(lengths),
            records=count,
            record_kind="reads",
            samples=len({rg.get("SM") for rg in header.get("RG", []) if rg.get("SM")}) or None,
            contigs=reference.public_contigs(used),
            contig_lengths=reference.public_lengths(lengths),
        )

    return through_pipe(chunks, _guarded(read, kind=kind, where=where))


def inspect_bcf(chunks: Iterable[bytes]) -> Inspection:
    where = _Where()

    def read(path: str) -> Inspection:
        with pysam.VariantFile(path) as variants:
            header = variants.header
            where.header_lines = 1  # a BCF has no lines: "record N" alone names the place
            lengths = [(str(name), contig.length) for name, contig in header.contigs.items()]
            major, minor = variants.version
            used: dict[str, None] = {}
            for record in variants:
                where.records += 1
                used[record.chrom] = None
            count = where.records
            return Inspection(
                format="BCF",
                format_version=f"BCFv{major}.{minor}",
                compression="bgzf",
                reference_build=reference.build_from_lengths(lengths),
                records=count,
                record_kind="variants",
                samples=len(header.samples),
                contigs=reference.public_contigs(used),
                contig_lengths=reference.public_lengths(lengths),
            )

    return through_pipe(chunks, _guarded(read, kind="BCF", where=where))


def _version_label(kind: str, header_version: str, alignments: pysam.AlignmentFile) -> str:
    """ "BAM (SAM v1.6)", "CRAM 3.0 (SAM v1.6)", "SAM v1.6": the container first, since
    @HD VN is only the version of the SAM spec the header follows (SAM v1 §1.3)."""
    sam = f"SAM v{header_version}" if header_version else ""
    if kind == "SAM":
        return sam
    label = kind
    if kind == "CRAM":
        major, minor = alignments.version
        label = f"CRAM {major}.{minor}"
    return f"{label} ({sam})" if sam else label


def _guarded(
    read: Callable[[str], Inspection], *, kind: str, where: _Where
) -> Callable[[str], Inspection]:
    """`read` with htslib's errors turned into a `FormatError` that names the place. Only
    htslib's: an error of the stream itself (truncated, ends.py; a Crypt4GH segment that
    fails to decrypt) comes out of `through_pipe` as it was raised, as the cause."""

    def guarded(path: str) -> Inspection:
        try:
            return read(path)
        except (OSError, ValueError) as exc:
            raise _damaged(kind, exc, where) from exc

    return guarded


@dataclass
class _Where:
    """How far htslib got before an error: the header's line count once it was read (None
    before), then the records read whole."""

    header_lines: int | None = None
    records: int = 0


def _damaged(kind: str, exc: Exception, where: _Where) -> FormatError:
    detail = str(exc).strip().rstrip(".") or type(exc).__name__
    if detail == "truncated file":
        # pysam's words for any failed read (htslib's -2), a malformed SAM line included;
        # a real cut is found first by its missing end marker (ends.py) or gzip trailer.
        detail = "the record is malformed or cut short"
    if where.header_lines is None:
        return FormatError(f"The {kind} header could not be read by htslib ({detail}).")
    place = f"Record {where.records + 1}"
    if kind == "SAM":  # a SAM record is a line after the header's
        place = f"Line {where.header_lines + where.records + 1} (record {where.records + 1})"
    return FormatError(f"{place}: htslib could not read it ({detail}).")
