"""BAM, CRAM, SAM and BCF through htslib (pysam), fed from memory through a pipe.

htslib validates these formats far better than anything we could write, and it reads a
pipe as well as a file: the plaintext streams through `/dev/fd/N` and never touches disk.
CRAM records are counted without decoding bases, so no reference sequence is needed (and
htslib is told not to fetch one over the network).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pysam

from genomics.formats import reference
from genomics.formats.ends import truncated
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

    def read(path: str) -> Inspection:
        options = _CRAM_FIELDS if kind == "CRAM" else None
        with pysam.AlignmentFile(path, check_sq=False, format_options=options) as alignments:
            header = alignments.header.to_dict()
            lengths = [(str(sq.get("SN", "")), sq.get("LN")) for sq in header.get("SQ", [])]
            label = _version_label(kind, str(header.get("HD", {}).get("VN", "")), alignments)
            used: dict[str, None] = {}
            count = 0
            for segment in alignments.fetch(until_eof=True):
                count += 1
                if segment.reference_id >= 0:
                    used[alignments.get_reference_name(segment.reference_id)] = None
        return Inspection(
            format=kind,
            format_version=label,
            compression=compression or {"BAM": "bgzf", "CRAM": "cram", "SAM": "none"}[kind],
            reference_build=reference.build_from_lengths(lengths),
            records=count,
            record_kind="reads",
            samples=len({rg.get("SM") for rg in header.get("RG", []) if rg.get("SM")}) or None,
            contigs=reference.public_contigs(used),
        )

    try:
        return through_pipe(chunks, read)
    except FormatError:
        raise  # found in the stream itself (ends.py): already says what is wrong
    except (OSError, ValueError) as exc:
        raise _damaged(kind, exc) from exc


def inspect_bcf(chunks: Iterable[bytes]) -> Inspection:
    def read(path: str) -> Inspection:
        with pysam.VariantFile(path) as variants:
            header = variants.header
            lengths = [(str(name), contig.length) for name, contig in header.contigs.items()]
            major, minor = variants.version
            used: dict[str, None] = {}
            count = 0
            for record in variants:
                count += 1
                used[record.chrom] = None
            return Inspection(
                format="BCF",
                format_version=f"BCFv{major}.{minor}",
                compression="bgzf",
                reference_build=reference.build_from_lengths(lengths),
                records=count,
                record_kind="variants",
                samples=len(header.samples),
                contigs=reference.public_contigs(used),
            )

    try:
        return through_pipe(chunks, read)
    except FormatError:
        raise  # found in the stream itself (ends.py): already says what is wrong
    except (OSError, ValueError) as exc:
        raise _damaged("BCF", exc) from exc


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


def _damaged(kind: str, exc: Exception) -> FormatError:
    detail = str(exc).strip().rstrip(".")
    if "truncat" in detail.lower() or "EOF" in detail:
        return truncated(kind, "it ends in the middle of a record or block")
    return FormatError(f"htslib could not read this {kind} file ({detail or type(exc).__name__}).")
