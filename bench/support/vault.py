"""Ready-made vault state for the benchmarks: an archive key and stored files of any size."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from bench.support.common import MIB

PART = 64 * MIB


def archive_key():
    from core import worker_secrets
    from genomics.models import ArchiveKey
    from genomics.services.archive_keys import archive_key_create

    worker_secrets.mark_worker_process()  # the benchmark plays the worker
    existing = ArchiveKey.objects.filter(active=True).first()
    return existing or archive_key_create(
        secret_key_path=Path(os.environ["ARCHIVE_SECRET_KEY_FILE"]),
        passphrase=os.environ["ARCHIVE_KEY_PASSPHRASE"],
    )


def owner():
    from ledger.models import WalletLink
    from marketplace.models import Role, User

    user, _ = User.objects.get_or_create(username="bench-donor", defaults={"role": Role.DONOR})
    # Listing needs a payout wallet (a well-known anvil address: the bench never pays it).
    WalletLink.objects.get_or_create(
        user=user, defaults={"address": "0x90F79bf6EB2c4f870365E785982E1f101E93b906"}
    )
    return user


def _parts(size: int, plaintext: bytes | None, source: Path | None) -> Iterator[memoryview]:
    """The plaintext in parts of at most PART bytes: from `source` (read from disk, never
    whole in memory), from `plaintext`, or `size` zeros."""
    if source is not None:
        with source.open("rb") as handle:
            while chunk := handle.read(PART):
                yield memoryview(chunk)
        return
    if plaintext is not None:
        for offset in range(0, size, PART):
            yield memoryview(plaintext)[offset : offset + PART]
        return
    zeros = memoryview(bytes(min(PART, size)))
    for offset in range(0, size, PART):
        yield zeros[: min(PART, size - offset)]


def stored_file(
    size: int,
    *,
    filename: str,
    plaintext: bytes | None = None,
    source: Path | None = None,
    file_format: str = "",
    metadata: dict[str, object] | None = None,
):
    """A ready file whose payload (`size` bytes of zeros, `plaintext`, or the file at
    `source`, `size` bytes long) is really stored, encrypted as ingest leaves it, in
    PART-sized stored parts; `file_format` and `metadata` as ingest would record them."""
    from genomics import c4gh, payloads
    from genomics.models import GenomicFile, PayloadPart

    key = archive_key()
    data_key = c4gh.new_data_key()
    stored = GenomicFile.objects.create(
        owner=owner(),
        filename=filename,
        upload_length=size,
        upload_offset=size,
        payload_key=secrets.token_hex(16),
        archive_key=key,
        state=GenomicFile.State.READY,
        source=GenomicFile.Source.PLAINTEXT,
        plaintext_size=size,
        format=file_format,
        metadata=metadata or {},
        header=c4gh.build_header(data_key, bytes(key.public_key)),
        payload_sha256="0" * 64,
    )
    buffer = bytearray(c4gh.encrypted_size(min(PART, size)))
    payload_offset = 0
    for chunk in _parts(size, plaintext, source):
        sealed = bytes(c4gh.encrypt_segments(data_key, chunk, out=buffer))
        name = payloads.write_part(stored.payload_key, payload_offset, sealed)
        PayloadPart.objects.create(
            file=stored, payload_offset=payload_offset, size=len(sealed), storage_name=name
        )
        payload_offset += len(sealed)
    stored.payload_size = payload_offset
    stored.save(update_fields=["payload_size"])
    return stored
