"""FASTQ and FASTA, plain or gzip: counted and checked in one streaming pass."""

from __future__ import annotations

import re
from collections.abc import Iterable

from genomics.formats.errors import FormatError
from genomics.formats.reference import public_contigs
from genomics.formats.result import Inspection
from genomics.formats.text import lines

_BASES = re.compile(rb"^[A-Za-z.*-]*$")
_QUALITY = re.compile(rb"^[!-~]*$")


def inspect_fastq(chunks: Iterable[bytes], *, compression: str) -> Inspection:
    """FASTQ as htslib and kseq read it (Cock et al. 2010, "The Sanger FASTQ file format"):
    a record is an '@' line, one or more sequence lines, a '+' line, then quality lines
    until the quality string is as long as the sequence. Quality lines may themselves start
    with '@' or '+', so a record's end is found by length, never by a line's first byte."""
    result = Inspection(format="FASTQ", compression=compression, record_kind="reads", samples=None)
    state = "head"  # head, sequence, quality
    sequence_length = quality_length = 0
    start = number = 0
    for number, line in enumerate(lines(chunks, kind="FASTQ"), start=1):
        if state == "head":
            if not line:
                continue  # blank lines between records, as kseq allows
            if not line.startswith(b"@"):
                raise FormatError(f"Line {number}: a FASTQ record must start with '@'.")
            state, start, sequence_length, quality_length = "sequence", number, 0, 0
        elif state == "sequence":
            if line.startswith(b"+"):
                state = "quality"
                if sequence_length == 0:
                    result.records += 1  # an empty read: no quality line follows
                    state = "head"
                continue
            if not _BASES.match(line):
                raise FormatError(
                    f"Line {number}: the sequence holds characters that are not bases."
                )
            sequence_length += len(line)
        else:
            if not _QUALITY.match(line):
                raise FormatError(f"Line {number}: quality characters must be printable ASCII.")
            quality_length += len(line)
            if quality_length > sequence_length:
                raise FormatError(
                    f"Line {number}: the quality string of the read starting on line {start} "
                    f"has {quality_length} characters but its sequence has {sequence_length}; "
                    "they must be equally long."
                )
            if quality_length == sequence_length:
                result.records += 1
                state = "head"
    if state == "sequence":
        raise FormatError(
            f"Line {number}: the last FASTQ record (from line {start}) is incomplete: "
            "its '+' line and quality are missing."
        )
    if state == "quality":
        raise FormatError(
            f"Line {number}: the last FASTQ record (from line {start}) is incomplete: its "
            f"quality string has {quality_length} characters but its sequence has "
            f"{sequence_length}; they must be equally long."
        )
    if result.records == 0:
        raise FormatError("The FASTQ file holds no reads.")
    return result


def inspect_fasta(chunks: Iterable[bytes], *, compression: str) -> Inspection:
    result = Inspection(format="FASTA", compression=compression, record_kind="sequences")
    names: list[str] = []
    in_record = False
    for number, line in enumerate(lines(chunks, kind="FASTA"), start=1):
        if line.startswith(b">"):
            name = line[1:].split(maxsplit=1)
            if not name:
                raise FormatError(f"Line {number}: a FASTA header needs a sequence name.")
            names.append(name[0].decode(errors="replace"))
            result.records += 1
            in_record = True
        elif line.startswith(b";") or not line:
            continue
        elif not in_record:
            raise FormatError(f"Line {number}: sequence data before the first '>' header.")
        elif not _BASES.match(line):
            raise FormatError(f"Line {number}: the sequence holds characters that are not bases.")
    if result.records == 0:
        raise FormatError("The FASTA file holds no sequences.")
    result.contigs = public_contigs(names)
    return result
