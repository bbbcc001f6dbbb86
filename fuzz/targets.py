"""What the fuzzers feed: the format validators and the Crypt4GH parsers must refuse any
input with their own error (FormatError, Crypt4GHError), never crash, never hang.

Used by `fuzz/run.py` (atheris, coverage-guided) and by `tests/fuzz/` (hypothesis).
"""

from __future__ import annotations

from contextlib import suppress

from genomics import c4gh
from genomics.c4gh.errors import Crypt4GHError
from genomics.formats import inspect
from genomics.formats.errors import FormatError

FILENAMES = ("x.vcf", "x.vcf.gz", "x.bam", "x.cram", "x.sam", "x.fastq", "x.fa", "x.txt", "x")
SECRET, PUBLIC = c4gh.generate_keypair()


def formats(data: bytes) -> None:
    """Format detection and validation on arbitrary bytes, in arbitrary chunks: the first
    byte picks the file name, the second the chunk size."""
    name = FILENAMES[data[0] % len(FILENAMES)] if data else "x"
    size = max(data[1] if len(data) > 1 else 1, 1)
    chunks = [data[i : i + size] for i in range(2, len(data), size)]
    with suppress(FormatError):
        inspect(iter(chunks), filename=name)


def crypt4gh(data: bytes) -> None:
    """Header sizing, splitting, decryption and segment decryption on arbitrary bytes."""
    with suppress(Crypt4GHError):
        c4gh.header_size(data[:64])
        header, _ = c4gh.split_header(data)
        c4gh.decrypt_header(header, SECRET)
    with suppress(Crypt4GHError):
        key = data[:32].ljust(32, b"\0")
        for _ in c4gh.decrypt_stream([key], [data[32:]], expected_size=len(data)):
            pass
    with suppress(Crypt4GHError):
        c4gh.parse_public_key(data)


TARGETS = {"formats": formats, "crypt4gh": crypt4gh}
