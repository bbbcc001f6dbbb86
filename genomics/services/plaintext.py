"""A ready file's plaintext, streamed (worker only: needs the archive key).

For derivations that must be rebuilt for files ingested before they existed (the variant
index's management command); ingest itself hands its one pass to taps
(genomics.ingest_taps). Plaintext exists only in memory, a segment at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

from genomics import c4gh, payloads
from genomics.archive_secret import archive_secret_key
from genomics.models import GenomicFile, PayloadPart


def file_plaintext(*, upload: GenomicFile) -> Iterator[bytes]:
    """The decrypted bytes of a `ready` file, in order. Raises c4gh.HeaderError when the
    archive key cannot open its header, SecretMissing outside the worker."""
    assert upload.archive_key is not None and upload.header is not None
    decrypted = c4gh.decrypt_header(bytes(upload.header), archive_secret_key(upload.archive_key))
    parts = list(
        PayloadPart.objects.filter(file=upload).values_list(
            "payload_offset", "size", "storage_name"
        )
    )
    yield from c4gh.decrypt_stream(
        decrypted.data_keys,
        payloads.read_range(parts, 0, upload.payload_size),
        edit_list=decrypted.edit_list,
    )
