"""The variant index's ingest tap (genomics.ingest_taps): reads the plaintext of a
VCF/BCF as ingest decrypts it, and writes its allele rows when the file becomes ready.

A thread runs pysam on the read end of a pipe that `feed` writes to; rows come back in
batches through a queue and go, from ingest's own thread and connection, into a
temporary table with COPY (PostgreSQL), so memory stays bounded whatever the file's size.
`commit` folds them into `discovery_variantallele` (duplicates within a file summed) in
the transaction that makes the file ready.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Mapping

from django.db import transaction

from discovery.models import VariantSource
from discovery.variants import store
from discovery.variants.reader import Row, Skipped, read_rows
from genomics.models import GenomicFile
from marketplace.web.results_cache import catalogue_changed

logger = logging.getLogger(__name__)

BATCH_ROWS = 20_000
VARIANT_FORMATS = frozenset({"VCF", "BCF"})
# First bytes of what htslib could read as variants: gzip/BGZF, BCF, plain VCF.
_MAGICS = (b"\x1f\x8b", b"BCF", b"##fileformat=VCF")


class VariantTap:
    def __init__(self, upload: GenomicFile) -> None:
        self.upload = upload
        self.active: bool | None = None  # decided by the first block
        self.batches: queue.Queue[list[Row] | None] = queue.Queue()
        self.error: str = ""
        self.skipped = Skipped()
        self.sink = store.AlleleSink()
        self._read_fd = -1
        self._write_fd = -1
        self._thread: threading.Thread | None = None

    def _start(self, first: bytes) -> None:
        self.active = first.startswith(_MAGICS)
        if not self.active:
            return
        self._read_fd, self._write_fd = os.pipe()
        self._thread = threading.Thread(target=self._read, name="variant-index", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        batch: list[Row] = []
        try:
            for row in read_rows(self._read_fd, self.skipped):
                batch.append(row)
                if len(batch) >= BATCH_ROWS:
                    self.batches.put(batch)
                    batch = []
            self.batches.put(batch)
        except (ValueError, OSError) as exc:  # not a VCF/BCF after all, or a damaged one
            self.error = str(exc) or type(exc).__name__
        finally:
            # Read what htslib left so the writer never blocks, then say we are done.
            while os.read(self._read_fd, 1 << 16):
                pass
            os.close(self._read_fd)
            self.batches.put(None)

    def _drain(self, *, until_done: bool) -> None:
        while True:
            try:
                batch = self.batches.get(block=until_done)
            except queue.Empty:
                return
            if batch is None:
                return
            if not self.error:
                self.sink.add(batch)

    def feed(self, block: bytes) -> None:
        if self.active is None:
            self._start(block)
        if not self.active or not block:
            return
        view = memoryview(block)
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]
        self._drain(until_done=False)

    def _close_pipe(self) -> None:
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1

    def commit(self, *, file_format: str, metadata: Mapping[str, object]) -> None:
        if not self.active:
            return
        self._close_pipe()
        self._drain(until_done=True)
        assert self._thread is not None
        self._thread.join()
        self.active = False
        if file_format not in VARIANT_FORMATS:
            self.sink.discard()
            return
        if self.error:
            logger.warning("file %s: variant index not built: %s", self.upload.pk, self.error)
            self.sink.discard()
            return
        source = VariantSource.objects.create(
            file=self.upload,
            assembly=str(metadata.get("reference_build") or ""),
            skipped_records=self.skipped.records,
        )
        source.alleles = self.sink.flush(source_id=source.pk)
        source.save(update_fields=["alleles"])
        # A listed dataset may now take part in the Beacon (its cached dataset list).
        transaction.on_commit(catalogue_changed)
        logger.info("file %s: %s alleles indexed", self.upload.pk, source.alleles)

    def abort(self) -> None:
        if not self.active:
            return
        self.active = False
        self._close_pipe()
        self._drain(until_done=True)
        if self._thread is not None:
            self._thread.join()
        self.sink.discard()


def variant_tap(upload: GenomicFile) -> VariantTap | None:
    """The tap for a file not yet indexed (a redelivered ingest finds it indexed)."""
    if VariantSource.objects.filter(file=upload).exists():
        return None
    return VariantTap(upload)
