"""Which format a stream holds, from its first bytes (and the name only to explain)."""

from __future__ import annotations

import zlib

from genomics.formats.ends import is_bgzf
from genomics.formats.errors import FormatError
from genomics.formats.stream import GZIP_MAGIC, Peekable
from genomics.formats.text import BOM

SNIFF_BYTES = 65536
# Magic numbers of things donors upload by mistake, to say what the file looks like.
_LOOKS_LIKE = (
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x7fELF", "a program"),
    (b"\xd0\xcf\x11\xe0", "a Microsoft Office document"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ", "an xz archive"),
    (b"(\xb5/\xfd", "a zstd archive"),
    # Windows Notepad's "Unicode": the formats are UTF-8 (VCF 4.4 §1.2), never UTF-16.
    (b"\xff\xfe", "UTF-16 text (save it as UTF-8 and upload it again)"),
    (b"\xfe\xff", "UTF-16 text (save it as UTF-8 and upload it again)"),
)
_EXPECTED = {
    ".vcf": "VCF",
    ".bam": "BAM",
    ".cram": "CRAM",
    ".sam": "SAM",
    ".bcf": "BCF",
    ".fastq": "FASTQ",
    ".fq": "FASTQ",
    ".fasta": "FASTA",
    ".fa": "FASTA",
    ".fna": "FASTA",
}


def _expected(filename: str) -> str | None:
    name = filename.lower().removesuffix(".gz").removesuffix(".bgz")
    return next((kind for suffix, kind in _EXPECTED.items() if name.endswith(suffix)), None)


def _gunzip_head(head: bytes) -> bytes:
    try:
        return zlib.decompressobj(wbits=31).decompress(head, SNIFF_BYTES)
    except zlib.error:
        return b""


def _text_kind(head: bytes) -> str | None:
    # Recognised with or without a BOM; whether the format allows one is text.RULES' say.
    text = head.removeprefix(BOM)
    if text.startswith(b"##fileformat=VCF"):
        return "VCF"
    if text[:4] in {b"@HD\t", b"@SQ\t", b"@RG\t", b"@PG\t", b"@CO\t"}:
        return "SAM"
    if text.startswith(b"@"):
        return "FASTQ"
    if _headerless_sam(text):
        return "SAM"
    if text.startswith((b">", b";")):
        return "FASTA"
    lowered = text[:4096].lower()
    if b"23andme" in lowered:
        return "23andMe"
    if b"ancestrydna" in lowered:
        return "AncestryDNA"
    return None


def _headerless_sam(text: bytes) -> bool:
    """A SAM file may have no header (SAM v1 §1: the header section is optional): its first line
    is then an alignment, 11 or more tab-separated fields with the integer FLAG, POS, MAPQ,
    PNEXT and TLEN of §1.4."""
    fields = text.split(b"\n", 1)[0].rstrip(b"\r").split(b"\t")
    return len(fields) >= 11 and all(fields[i].lstrip(b"-").isdigit() for i in (1, 3, 4, 7, 8))


def _is_text(head: bytes) -> bool:
    return bool(head) and not any(b < 9 or 13 < b < 32 for b in head[:4096])


def _named_text(head: bytes, filename: str) -> str | None:
    """Text named like a text format is handed to that format's parser, whose error names
    the line that is wrong (better than "not a VCF")."""
    expected = _expected(filename)
    return expected if expected in {"VCF", "FASTQ", "FASTA"} and _is_text(head) else None


def _refuse(head: bytes, filename: str) -> FormatError:
    if head.startswith(b"PK"):
        # A ZIP that formats.inspect could not open (empty, nested, inside gzip): 23andMe
        # and AncestryDNA ship their raw data as a .zip holding one .txt.
        return FormatError(
            "The file is a ZIP archive: unzip it first and upload the file inside "
            "(a 23andMe or AncestryDNA download is a .zip holding one .txt)."
        )
    looks = next((label for magic, label in _LOOKS_LIKE if head.startswith(magic)), None)
    if looks is None and head and sum(b < 9 or 13 < b < 32 for b in head[:512]) > 8:
        looks = "binary data"
    detail = f": the first bytes look like {looks}" if looks else ""
    expected = _expected(filename)
    if expected:
        return FormatError(f"The file is named like a {expected} file but is not one{detail}.")
    return FormatError(
        f"Not a recognised genomic format{detail}. Supported: VCF, BCF, BAM, "
        "CRAM, SAM, FASTQ, FASTA, 23andMe and AncestryDNA raw data."
    )


def sniff(stream: Peekable, *, filename: str) -> tuple[str, str]:
    """(kind, compression) where compression is "", "gzip" or "bgzf"."""
    head = stream.peek(SNIFF_BYTES)
    if not head:
        raise FormatError("The file is empty.")
    if head.startswith(b"CRAM"):
        return "CRAM", ""
    if head.startswith((b"BCF\x02", b"BAM\x01")):
        # htslib reads these raw (bcftools -Ou), but nothing marks their end: a file cut
        # between records would be published as complete (ends.py).
        raise FormatError(
            f"The file is an uncompressed {head[:3].decode()}, which cannot show that it is "
            "whole (it has no end-of-file block): compress it (bcftools view -Ob, "
            "samtools view -b) and upload it again."
        )
    if head.startswith(GZIP_MAGIC):
        inner = _gunzip_head(head)
        compression = "bgzf" if is_bgzf(head) else "gzip"
        if inner.startswith(b"BAM\x01"):
            return "BAM", compression
        if inner.startswith(b"BCF\x02"):
            return "BCF", compression
        kind = _text_kind(inner) or _named_text(inner, filename)
        if kind is None:
            raise (
                _refuse(inner, filename)
                if inner
                else FormatError(
                    "The file is gzip-compressed but its start cannot be decompressed."
                )
            )
        return kind, compression
    kind = _text_kind(head) or _named_text(head, filename)
    if kind is None:
        raise _refuse(head, filename)
    return kind, ""
