"""FASTQ and FASTA, plain or gzip: counted and checked in one streaming pass."""

from __future__ import annotations

import re
from collections.abc import Iterable

from genomics.formats.errors import FormatError
from genomics.formats.reference import public_contigs
from genomics.formats.result import Inspection
from genomics.formats.stream import lines

_BASES = re.compile(rb"^[A-Za-z.*-]*$")
_QUALITY = re.compile(rb"^[!-~]*$")


def inspect_fastq(chunks: Iterable[bytes], *, compression: str) -> Inspection:
    result = Inspection(format="FASTQ", compression=compression, record_kind="reads", samples=None)
    record: list[bytes] = []
    number = 0
    for number, line in enumerate(lines(chunks), start=1):
        if not record and not line:
            continue
        record.append(line)
        if len(record) < 4:
            continue
        head, sequence, plus, quality = record
        first = number - 3
        if not head.startswith(b"@"):
            raise FormatError(f"Line {first}: a FASTQ record must start with '@'.")
        if not plus.startswith(b"+"):
            raise FormatError(f"Line {first + 2}: expected the '+' separator line.")
        if not _BASES.match(sequence):
            raise FormatError(
                f"Line {first + 1}: the sequence holds characters that are not bases."
            )
        if len(quality) != len(sequence):
            raise FormatError(
                f"Line {first + 3}: the quality string has {len(quality)} characters but the "
                f"sequence has {len(sequence)}; they must be equally long."
            )
        if not _QUALITY.match(quality):
            raise FormatError(f"Line {first + 3}: quality characters must be printable ASCII.")
        result.records += 1
        record = []
    if record:
        raise FormatError(
            f"Line {number}: the last FASTQ record is incomplete (a record has four lines)."
        )
    if result.records == 0:
        raise FormatError("The FASTQ file holds no reads.")
    return result


def inspect_fasta(chunks: Iterable[bytes], *, compression: str) -> Inspection:
    result = Inspection(format="FASTA", compression=compression, record_kind="sequences")
    names: list[str] = []
    in_record = False
    for number, line in enumerate(lines(chunks), start=1):
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
