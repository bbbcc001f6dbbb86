"""Text saved on Windows (or by old Mac editors): one rule per format for a UTF-8 byte-order
mark, CR+LF and a lone CR, applied by `inspect` to every text format before its parser.

The sniffer recognises a format with or without a BOM (`sniff._text_kind`), so that the
refusal below can say what is wrong instead of "not a VCF"; every parser then reads the
stream through `without_bom` and `lines` (or `line_ends_checked`, for htslib's SAM parser),
so all of them treat these bytes the same way.

| format              | BOM      | CR+LF    | lone CR  | why                                     |
| ------------------- | -------- | -------- | -------- | --------------------------------------- |
| VCF                 | refused  | accepted | refused  | VCF 4.4 §1 (LF and CR+LF must be read), |
|                     |          |          |          | §1.2 (no byte order mark; separators    |
|                     |          |          |          | only at the end of a line)              |
| SAM                 | refused  | accepted | refused  | SAM v1 §1: a header line starts with @  |
| FASTA, FASTQ        | accepted | accepted | refused  | Windows editors write BOM and CR+LF     |
| 23andMe, AncestryDNA| accepted | accepted | accepted | the companies' files opened in Excel    |
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from genomics.formats.errors import FormatError

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class TextRule:
    bom: bool  # a UTF-8 byte-order mark at the start is skipped (else the file is refused)
    lone_cr: bool  # a CR not followed by LF ends a line (else the file is refused)
    why: str = ""  # the spec clause behind a refusal, for the donor's message


RULES = {
    "VCF": TextRule(
        bom=False,
        lone_cr=False,
        why="VCF 4.4 §1.2: VCF files must not contain a byte order mark, and their line "
        "separators are LF or CR+LF, only at the end of a line",
    ),
    "SAM": TextRule(
        bom=False,
        lone_cr=False,
        why="a SAM file starts with '@' or a read, and its lines end with LF or CR+LF",
    ),
    "FASTA": TextRule(bom=True, lone_cr=False, why="FASTA lines end with LF or CR+LF"),
    "FASTQ": TextRule(bom=True, lone_cr=False, why="FASTQ lines end with LF or CR+LF"),
    "23andMe": TextRule(bom=True, lone_cr=True),
    "AncestryDNA": TextRule(bom=True, lone_cr=True),
}


def without_bom(chunks: Iterable[bytes], *, kind: str) -> Iterator[bytes]:
    """`chunks` with a leading UTF-8 BOM removed where `kind` allows one; raises
    `FormatError` where it does not."""
    rule = RULES[kind]
    iterator = iter(chunks)
    head = b""
    for chunk in iterator:
        head += chunk
        if len(head) >= len(BOM) or not BOM.startswith(head):
            break
    if head.startswith(BOM):
        if not rule.bom:
            raise FormatError(
                f"The file starts with a byte-order mark (the bytes EF BB BF that some Windows "
                f"editors write), which a {kind} file must not have ({rule.why}). Save it "
                "as UTF-8 without BOM (or remove the first three bytes) and upload it again."
            )
        head = head[len(BOM) :]
    if head:
        yield head
    yield from iterator


def lines(chunks: Iterable[bytes], *, kind: str) -> Iterator[bytes]:
    """Lines without their line end (LF or CR+LF; also a lone CR where `kind` allows it),
    streamed. A lone CR elsewhere raises `FormatError` naming the line, as soon as it is
    seen (a file of CR-only line ends would otherwise be read as one huge line)."""
    rule = RULES[kind]
    rest = b""
    number = 0
    for chunk in chunks:
        data = rest + chunk
        held = b""
        if rule.lone_cr:
            if data.endswith(b"\r"):  # maybe the first half of a CR+LF split across chunks
                data, held = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        parts = data.split(b"\n")
        rest = parts.pop() + held
        if b"\r" not in data:  # the common case (LF files): no per-line work
            number += len(parts)
            yield from parts
            continue
        for line in parts:
            number += 1
            yield _line(line, number, rule, kind)
        if not rule.lone_cr and b"\r" in rest[:-1]:
            raise _lone_cr(number + 1, rule, kind)
    if rest:
        yield _line(rest, number + 1, rule, kind)


def line_ends_checked(chunks: Iterable[bytes], *, kind: str) -> Iterator[bytes]:
    """`chunks` unchanged, for a parser that splits lines itself (htslib for SAM), with the
    same lone-CR rule as `lines`: a CR not followed by LF raises `FormatError` naming its
    line, where `kind` does not allow one."""
    rule = RULES[kind]
    newlines = 0
    pending_cr = False  # the previous chunk ended with CR: this one must start with LF
    for chunk in chunks:
        if rule.lone_cr or not chunk:
            yield chunk
            continue
        if pending_cr and not chunk.startswith(b"\n"):
            raise _lone_cr(newlines + 1, rule, kind)
        at = chunk.find(b"\r")
        while at != -1 and at + 1 < len(chunk):
            if chunk[at + 1] != 0x0A:
                raise _lone_cr(newlines + chunk.count(b"\n", 0, at) + 1, rule, kind)
            at = chunk.find(b"\r", at + 1)
        pending_cr = chunk.endswith(b"\r")
        newlines += chunk.count(b"\n")
        yield chunk


def _line(line: bytes, number: int, rule: TextRule, kind: str) -> bytes:
    if line.endswith(b"\r"):
        line = line[:-1]
    if b"\r" in line:
        raise _lone_cr(number, rule, kind)
    return line


def _lone_cr(number: int, rule: TextRule, kind: str) -> FormatError:
    return FormatError(
        f"Line {number}: a carriage return (CR) that does not end a CR+LF line end, as old "
        f"Mac editors write; a {kind} file's lines must end with LF or CR+LF ({rule.why}). "
        "Convert the line ends (e.g. with dos2unix -c mac) and upload it again."
    )
