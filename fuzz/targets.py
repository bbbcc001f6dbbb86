"""What the fuzzers feed: the format validators and the Crypt4GH parsers (headers, public
keys, secret key files) must refuse any input with their own error (FormatError,
Crypt4GHError), never crash, never hang, and never quote secret input in a message.

Used by `fuzz/run.py` (atheris, coverage-guided) and by `tests/fuzz/` (hypothesis).
"""

from __future__ import annotations

import base64
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


KEY_LABELS = ("CRYPT4GH PRIVATE KEY", "CRYPT4GH ENCRYPTED PRIVATE KEY", "ENCRYPTED PRIVATE KEY")


def _quoted(body: bytes, text: str) -> bool:
    """Whether `text` quotes any 6-byte run of `body` in hex or Python repr (issue 14.5)."""
    lowered = text.lower()
    for start in range(len(body) - 5):
        run = body[start : start + 6]
        if run.hex() in lowered or (len(repr(run)) >= 11 and repr(run)[2:-1] in text):
            return True
    return False


def keyfile(data: bytes) -> None:
    """The secret key file parser on arbitrary bytes. The first byte chooses: the bytes
    as the whole file, or (odd) the rest as the body of a PEM block under one of the
    tools' labels, so the fuzzer works on the c4gh-v1 / OpenSSH / PKCS#8 structure itself.
    It must refuse with InvalidKey only, and its message must not quote the body."""
    if data and data[0] % 2:
        label = KEY_LABELS[data[0] // 2 % len(KEY_LABELS)]
        body = data[1:]
        content = (
            f"-----BEGIN {label}-----\n{base64.b64encode(body).decode()}\n-----END {label}-----\n"
        ).encode()
    else:
        body, content = data[1:], data[1:]
    try:
        c4gh.read_secret_key_file(content, "fuzz pass phrase")
    except c4gh.InvalidKey as refused:
        if _quoted(body, str(refused)):
            raise AssertionError("the refusal quotes the key file") from None


TARGETS = {"formats": formats, "crypt4gh": crypt4gh, "keyfile": keyfile}
