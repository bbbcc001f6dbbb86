"""VCF text (plain or bgzip-decompressed), checked line by line so an error names the line.

Written in Python rather than read through htslib because htslib's errors say "invalid
file" without a line; the binary BCF goes through htslib (`htslib.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from genomics.formats import reference
from genomics.formats.errors import FormatError
from genomics.formats.result import Inspection
from genomics.formats.text import lines

MANDATORY = [b"#CHROM", b"POS", b"ID", b"REF", b"ALT", b"QUAL", b"FILTER", b"INFO"]
_VERSION = re.compile(rb"^##fileformat=VCFv(4\.[0-9])\s*$")
_CONTIG = re.compile(rb"^##contig=<(.*)>$")
_REF = re.compile(rb"^[ACGTNacgtn]+$")


def _contig_fields(body: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in re.split(rb",(?=[A-Za-z_]+=)", body):
        key, _, value = item.partition(b"=")
        fields[key.decode(errors="replace")] = value.decode(errors="replace")
    return fields


def inspect_vcf(chunks: Iterable[bytes], *, compression: str) -> Inspection:
    result = Inspection(format="VCF", compression=compression, record_kind="variants")
    declared: list[tuple[str, int | None]] = []
    header_text: list[str] = []
    columns: int | None = None
    order: dict[bytes, int] = {}
    current: bytes | None = None
    last_pos = 0
    checked_format = b""  # the last FORMAT column found free of repeated keys
    number = 0
    for number, line in enumerate(lines(chunks, kind="VCF"), start=1):
        if number == 1:
            match = _VERSION.match(line)
            if match is None:
                raise FormatError("Line 1: a VCF must start with ##fileformat=VCFv4.x.")
            result.format_version = "VCFv" + match.group(1).decode()
            continue
        if columns is None:
            if line.startswith(b"##"):
                if contig := _CONTIG.match(line):
                    fields = _contig_fields(contig.group(1))
                    length = fields.get("length", "")
                    declared.append(
                        (fields.get("ID", ""), int(length) if length.isdigit() else None)
                    )
                elif line.startswith((b"##reference=", b"##assembly=")):
                    header_text.append(line.decode(errors="replace"))
                continue
            if line.startswith(b"#CHROM"):
                names = line.split(b"\t")
                if names[:8] != MANDATORY:
                    raise FormatError(
                        f"Line {number}: the header line must start with the columns "
                        "#CHROM POS ID REF ALT QUAL FILTER INFO, tab-separated."
                    )
                if len(names) > 8 and names[8] != b"FORMAT":
                    raise FormatError(f"Line {number}: the 9th column must be FORMAT.")
                first: dict[bytes, int] = {}
                for column, name in enumerate(names[9:], start=10):
                    if name in first:
                        # The names are the donor's sample ids: say where, never what.
                        raise FormatError(
                            f"Line {number}: column {column} repeats the sample name of "
                            f"column {first[name]}; sample names must be unique (VCF 4.4 §1.5)."
                        )
                    first[name] = column
                columns = len(names)
                result.samples = max(columns - 9, 0)
                continue
            raise FormatError(
                f"Line {number}: expected a ## meta line or the #CHROM header "
                "line before any record."
            )
        if not line:
            continue
        found = line.count(b"\t") + 1
        if found != columns:
            raise FormatError(
                f"Line {number}: expected {columns} tab-separated columns "
                f"(as in the #CHROM line), found {found}."
            )
        cells = line.split(b"\t", 9)
        chrom, pos_text, _id, ref, alt = cells[:5]
        if not pos_text.isdigit():
            # 0 is allowed: a telomere (VCF 4.4 §1.6.1), and htslib reads it.
            raise FormatError(
                f"Line {number}: POS must be a whole number, not "
                f"{pos_text[:20].decode(errors='replace')!r}."
            )
        if not _REF.match(ref):
            raise FormatError(f"Line {number}: REF must be bases (A, C, G, T, N).")
        if not alt:
            raise FormatError(f"Line {number}: ALT is empty (use '.' for none).")
        if columns > 8 and cells[8] != checked_format:  # records mostly repeat one FORMAT
            keys = cells[8].split(b":")
            checked_format = cells[8]
            if len(set(keys)) != len(keys):
                repeated = next(key for key in keys if keys.count(key) > 1)
                raise FormatError(
                    f"Line {number}: the FORMAT key {repeated[:20].decode(errors='replace')} "
                    "appears twice; FORMAT keys must be unique (VCF 4.4 §1.6.2)."
                )
        pos = int(pos_text)
        if chrom != current:
            if chrom in order:
                raise FormatError(
                    f"Line {number}: records for {chrom.decode(errors='replace')} appear again "
                    "after other contigs; a VCF must be sorted by contig and position."
                )
            order[chrom] = len(order)
            current, last_pos = chrom, 0
        elif pos < last_pos:
            raise FormatError(
                f"Line {number}: position {pos} on {chrom.decode(errors='replace')} comes after "
                f"position {last_pos}; a VCF must be sorted by position."
            )
        last_pos = pos
        result.records += 1
    if number == 0:
        raise FormatError("The file is empty.")
    if columns is None:
        raise FormatError("The VCF has no #CHROM header line.")
    observed = [name.decode(errors="replace") for name in order]
    result.contigs = reference.public_contigs(observed)
    result.contig_lengths = reference.public_lengths(declared)
    result.reference_build = reference.build_from_lengths(declared) or reference.build_from_text(
        " ".join(header_text)
    )
    return result
