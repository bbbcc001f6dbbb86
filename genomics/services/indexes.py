"""Indexes at ingest (worker): the standard index of every sliceable file, kept encrypted.

A file is sliceable when htslib can seek in it by region: BAM (BAI), CRAM (CRAI), BCF (CSI)
and VCF compressed with BGZF (TBI; CSI when a contig is longer than 2^29). A VCF that is
plain or compressed with ordinary gzip cannot be sliced (no block boundaries to seek to):
its page says so, and a bgzipped copy can be made.

htslib builds indexes from a file it can seek in, so the plaintext is decrypted into an
anonymous in-memory file (`memfd_create`): it never touches a disk, as for ingest, and is
gone when the descriptor closes. The index and the block map (genomics.models.FileIndex)
are then encrypted with Crypt4GH to the archive key and stored like payloads; only the
worker can read them back (`file_index_read`).
"""

from __future__ import annotations

import base64
import json
import logging
import mmap
import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pysam
from django.db import transaction

from genomics import c4gh, htsindex, payloads
from genomics.archive_secret import archive_secret_key
from genomics.models import FileIndex, GenomicFile

logger = logging.getLogger(__name__)

READS = ("BAM", "CRAM")
VARIANTS = ("VCF", "BCF")
_BGZF_MAGIC = b"\x1f\x8b\x08\x04"
# tabix (TBI) addresses positions below 2^29; longer contigs need CSI.
TBI_MAX_LENGTH = 1 << 29


@dataclass(frozen=True)
class BlockMap:
    """What a ticket needs besides the index: the format, the references in index order,
    where the first record starts (virtual offset), every block's (or CRAM container's)
    compressed offset, the file's size and the size of its EOF marker."""

    format: str
    references: list[str]
    header_end: int
    blocks: list[int]
    size: int
    eof_size: int

    def to_bytes(self) -> bytes:
        packed = struct.pack(f"<{len(self.blocks)}Q", *self.blocks)
        return json.dumps(
            {
                "format": self.format,
                "references": self.references,
                "header_end": self.header_end,
                "blocks": base64.b64encode(packed).decode(),
                "size": self.size,
                "eof_size": self.eof_size,
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> BlockMap:
        fields = json.loads(data)
        packed = base64.b64decode(fields["blocks"])
        blocks = list(struct.unpack(f"<{len(packed) // 8}Q", packed))
        return cls(
            fields["format"],
            fields["references"],
            fields["header_end"],
            blocks,
            fields["size"],
            fields["eof_size"],
        )


def sliceable_format(file_format: str, compression: object) -> bool:
    """Whether htsget can serve regions of a file of this format (it allows an index)."""
    if file_format in ("BAM", "CRAM", "BCF"):
        return True
    return file_format == "VCF" and compression == "bgzf"


def sliceable(file: GenomicFile) -> bool:
    """Whether htsget can serve regions of `file`. A file read out of a ZIP is stored as the
    ZIP, whatever its member's compression: not sliceable (it can be stored bgzipped)."""
    if (file.metadata or {}).get("container"):
        return False
    return sliceable_format(file.format, file.metadata.get("compression"))


def _plaintext(file: GenomicFile, secret: bytes) -> Iterator[bytes]:
    assert file.header is not None
    decrypted = c4gh.decrypt_header(bytes(file.header), secret)
    parts = [(p.payload_offset, p.size, p.storage_name) for p in file.parts.all()]
    yield from c4gh.decrypt_stream(
        decrypted.data_keys,
        payloads.read_range(parts, 0, file.payload_size),
        edit_list=decrypted.edit_list,
    )


def _bgzf_blocks(view: mmap.mmap, size: int) -> list[int]:
    """Compressed offsets of every BGZF block (RFC 1952 member with the BC extra field)."""
    blocks, position = [], 0
    while position + 18 <= size:
        if view[position : position + 4] != _BGZF_MAGIC:
            raise htsindex.IndexUnreadable("not a BGZF file")
        (xlen,) = struct.unpack_from("<H", view, position + 10)
        extra, found = position + 12, None
        while extra < position + 12 + xlen:
            sub, length = view[extra : extra + 2], struct.unpack_from("<H", view, extra + 2)[0]
            if sub == b"BC":
                found = struct.unpack_from("<H", view, extra + 4)[0]
            extra += 4 + length
        if found is None:
            raise htsindex.IndexUnreadable("a gzip member without a BGZF block size")
        blocks.append(position)
        position += found + 1
    return blocks


def _build(path: str, fd: int, file_format: str, size: int) -> tuple[str, bytes, BlockMap]:
    out = os.memfd_create("index")
    out_path = f"/proc/self/fd/{out}"
    try:
        with mmap.mmap(fd, size, prot=mmap.PROT_READ) as view:
            tail = bytes(view[max(size - 38, 0) : size])
            if file_format == "CRAM":
                pysam.index(path, "-o", out_path)
                kind = "CRAI"
                with pysam.AlignmentFile(path, format_options=["required_fields=0x0c"]) as f:
                    references = list(f.references)
                eof = len(htsindex.CRAM_EOF) if tail.endswith(htsindex.CRAM_EOF) else 0
                blocks: list[int] = []
                header_end = 0
            else:
                blocks = _bgzf_blocks(view, size)
                eof = 28 if tail.endswith(htsindex.BGZF_EOF) else 0
                if file_format == "BAM":
                    pysam.index(path, "-o", out_path)
                    kind = "BAI"
                    with pysam.AlignmentFile(path, check_sq=False) as alignments:
                        references = list(alignments.references)
                        header_end = alignments.tell()
                else:
                    with pysam.VariantFile(path) as variants:
                        contigs = variants.header.contigs
                        references = [str(name) for name in contigs]
                        header_end = variants.tell()
                        long = any((c.length or 0) >= TBI_MAX_LENGTH for c in contigs.values())
                    kind = "CSI" if file_format == "BCF" or long else "TBI"
                    pysam.tabix_index(
                        path,
                        # The path is a /proc fd, without the .bcf suffix htslib would
                        # otherwise guess the format from; pysam takes "bcf" (a CSI of the
                        # BCF), which its type stubs do not list.
                        preset="vcf" if file_format == "VCF" else "bcf",  # type: ignore[arg-type]
                        index=out_path,
                        force=True,
                        keep_original=True,
                        csi=kind == "CSI",
                    )
        index = Path(out_path).read_bytes()
    finally:
        os.close(out)
    if kind == "CRAI":
        entries = htsindex.parse_crai(index)
        blocks = sorted({entry.container for entry in entries})
        header_end = (blocks[0] if blocks else size - eof) << 16
    return kind, index, BlockMap(file_format, references, header_end, blocks, size, eof)


def index_build(path: str, fd: int, file_format: str, size: int) -> tuple[str, bytes, BlockMap]:
    """(index kind, index bytes, block map) of the plaintext file `fd` of `size` bytes, also
    readable at `path`, by htslib. Raises pysam.utils.SamtoolsError, OSError or ValueError
    (htsindex.IndexUnreadable among them) when htslib cannot index it."""
    return _build(path, fd, file_format, size)


def index_storage_key() -> str:
    """A fresh random payload key for an index or block map object."""
    return f"index-{secrets.token_hex(16)}"


@dataclass(frozen=True)
class SealedIndex:
    """An index and its block map, each encrypted under its own fresh data key and stored;
    their Crypt4GH headers are made for an archive key only when the row is written
    (`row_fields`), so a caller may store first and write the row later, under the file's
    lock, for whatever archive key the file then has (genomics.services.recompress)."""

    kind: str
    index_storage_name: str
    index_data_key: bytes
    index_size: int
    map_storage_name: str
    map_data_key: bytes
    map_size: int
    blocks: int

    def row_fields(self, archive_public: bytes, writer_secret: bytes) -> dict[str, object]:
        """The FileIndex fields, with headers to `archive_public` written by the archive."""
        return {
            "index_format": self.kind,
            "index_storage_name": self.index_storage_name,
            "index_header": c4gh.build_header(
                self.index_data_key, archive_public, writer_secret=writer_secret
            ),
            "index_size": self.index_size,
            "map_storage_name": self.map_storage_name,
            "map_header": c4gh.build_header(
                self.map_data_key, archive_public, writer_secret=writer_secret
            ),
            "map_size": self.map_size,
        }

    def delete(self) -> None:
        """Delete both stored objects (a build that lost, or an attempt given up)."""
        payloads.delete_payload(self.index_storage_name.split("/")[1])
        payloads.delete_payload(self.map_storage_name.split("/")[1])


def _seal_and_store(payload_key: str, data: bytes) -> tuple[str, bytes]:
    """(storage name, data key) of `data` encrypted under a fresh data key and stored."""
    data_key = c4gh.new_data_key()
    name = payloads.write_part(payload_key, 0, bytes(c4gh.encrypt_segments(data_key, data)))
    return name, data_key


def index_objects_store(
    kind: str,
    index: bytes,
    block_map: BlockMap,
    *,
    index_payload_key: str | None = None,
    map_payload_key: str | None = None,
) -> SealedIndex:
    """Encrypt and store an index and its block map under the given payload keys (fresh
    random ones by default)."""
    map_bytes = block_map.to_bytes()
    index_name, index_key = _seal_and_store(index_payload_key or index_storage_key(), index)
    map_name, map_key = _seal_and_store(map_payload_key or index_storage_key(), map_bytes)
    return SealedIndex(
        kind,
        index_name,
        index_key,
        len(index),
        map_name,
        map_key,
        len(map_bytes),
        len(block_map.blocks),
    )


def file_index_build(
    *, file_id: str, file_format: str | None = None, compression: str | None = None
) -> FileIndex | None:
    """Build, encrypt and store the index of one file; worker only. Ingest passes the
    format it has just found (`file_format`, `compression`); otherwise the recorded one.

    Idempotent: a file that has its index, or that is not sliceable, gets nothing new
    (None for the latter). Raises c4gh.Crypt4GHError or htsindex.IndexUnreadable (logged by the
    caller) when the payload cannot be read or the format is not what ingest recorded.
    """
    file = GenomicFile.objects.select_related("archive_key").filter(pk=file_id).first()
    if file is None or file.archive_key is None:
        return None
    fmt = file_format or file.format
    if not sliceable_format(fmt, compression or file.metadata.get("compression")):
        return None
    existing = FileIndex.objects.filter(file=file).first()
    if existing is not None:
        return existing
    secret = archive_secret_key(file.archive_key)
    assert file.header is not None
    if c4gh.decrypt_header(bytes(file.header), secret).edit_list is not None:
        # Offsets in the index would not be payload offsets: such a donor-made file is
        # served whole only.
        logger.info("file %s has an edit list: not indexed", file.pk)
        return None
    fd = os.memfd_create("plaintext")
    try:
        size = 0
        for block in _plaintext(file, secret):
            os.write(fd, block)
            size += len(block)
        kind, index, block_map = _build(f"/proc/self/fd/{fd}", fd, fmt, size)
    except (pysam.utils.SamtoolsError, OSError, ValueError) as exc:
        raise htsindex.IndexUnreadable(f"htslib could not index the file: {exc}") from exc
    finally:
        os.close(fd)
    sealed = index_objects_store(kind, index, block_map)
    with transaction.atomic():
        row, created = FileIndex.objects.get_or_create(
            file=file,
            defaults=sealed.row_fields(bytes(file.archive_key.public_key), secret),
        )
    if not created:  # a concurrent build won: drop ours
        sealed.delete()
    logger.info("file %s indexed: %s, %s blocks", file.pk, kind, len(block_map.blocks))
    return row


def _read_object(name: str, header: bytes, secret: bytes) -> bytes:
    from django.core.files.storage import default_storage

    with default_storage.open(name, "rb") as handle:
        encrypted = handle.read()
    keys = c4gh.decrypt_header(header, secret).data_keys
    return b"".join(c4gh.decrypt_stream(keys, [encrypted]))


def file_index_read(*, index: FileIndex, secret: bytes) -> tuple[bytes, BlockMap]:
    """The decrypted index and block map of a file (worker only: `secret` is the archive
    secret key of the file's archive key)."""
    data = _read_object(index.index_storage_name, bytes(index.index_header), secret)
    block_map = BlockMap.from_bytes(
        _read_object(index.map_storage_name, bytes(index.map_header), secret)
    )
    return data, block_map


def files_index_missing(*, limit: int | None = None) -> list[str]:
    """Ids of ready, sliceable files without an index (for `manage.py index_files`)."""
    ids = []
    candidates = GenomicFile.objects.filter(
        state=GenomicFile.State.READY, index__isnull=True
    ).order_by("created_at")
    for file in candidates.iterator():
        if sliceable(file):
            ids.append(str(file.pk))
            if limit is not None and len(ids) >= limit:
                break
    return ids
