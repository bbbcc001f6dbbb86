"""Payload storage: a payload is an ordered list of parts in Django's default storage.

Parts instead of one growing object because S3-compatible stores cannot append, and
because a crash between writing a part and recording it leaves a part whose name the retry
overwrites (names are `payloads/<random key>/<payload offset>`), so nothing is orphaned.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

READ_CHUNK = 1024 * 1024


def part_name(payload_key: str, payload_offset: int) -> str:
    return f"payloads/{payload_key}/{payload_offset:016d}"


def write_part(payload_key: str, payload_offset: int, data: bytes) -> str:
    """Store one part, replacing a leftover of an earlier, interrupted attempt."""
    name = part_name(payload_key, payload_offset)
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # the storage renamed it: a concurrent writer raced us
        default_storage.delete(saved)
        raise FileExistsError(f"payload part {name} was written concurrently")
    return name


def delete_payload(payload_key: str) -> None:
    """Delete every part under the key, recorded or not."""
    folder = f"payloads/{payload_key}"
    try:
        _, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(f"{folder}/{name}")


def read_range(
    parts: Sequence[tuple[int, int, str]], start: int, end: int, chunk: int = READ_CHUNK
) -> Iterator[bytes]:
    """Yield payload bytes [start, end) from parts given as (offset, size, storage name)."""
    for offset, size, name in parts:
        part_end = offset + size
        if part_end <= start or offset >= end:
            continue
        with default_storage.open(name, "rb") as handle:
            position = max(start - offset, 0)
            handle.seek(position)
            remaining = min(end, part_end) - (offset + position)
            while remaining > 0:
                data = handle.read(min(chunk, remaining))
                if not data:
                    raise OSError(f"payload part {name} is shorter than recorded")
                remaining -= len(data)
                yield data
