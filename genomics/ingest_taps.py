"""Readers of a file's plaintext during ingest, contributed by other apps.

Ingest decrypts each file once (genomics.services.ingest); an app that derives something
from the plaintext (the variant index of `discovery`) registers a tap factory here in its
AppConfig.ready instead of decrypting the file again, and `genomics` stays ignorant of it
(dependencies point one way, DESIGN "Layout").

A tap sees every plaintext block in order (`feed`), then either `commit` (inside the
transaction that makes the file `ready`, with the inspected format and metadata) or
`abort` (the file failed, or ingest stopped). A tap must keep plaintext in memory only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from genomics.models import GenomicFile


class IngestTap(Protocol):
    def feed(self, block: bytes) -> None: ...

    def commit(self, *, file_format: str, metadata: Mapping[str, object]) -> None: ...

    def abort(self) -> None: ...


TapFactory = Callable[["GenomicFile"], "IngestTap | None"]
_factories: list[TapFactory] = []


def register(factory: TapFactory) -> None:
    """Add a tap factory (idempotent); called from an AppConfig.ready."""
    if factory not in _factories:
        _factories.append(factory)


def open_taps(upload: GenomicFile) -> list[IngestTap]:
    """One tap per registered factory that wants this file."""
    return [tap for factory in _factories if (tap := factory(upload)) is not None]


def tee(blocks: Iterator[bytes], taps: list[IngestTap]) -> Iterator[bytes]:
    """The blocks unchanged, each also fed to every tap."""
    for block in blocks:
        for tap in taps:
            tap.feed(block)
        yield block
