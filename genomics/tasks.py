"""Genomics Celery tasks: thin, ids in, services do the work."""

from __future__ import annotations

from celery import shared_task

from genomics.services.archive_keys import archive_key_rotate, archive_key_rotation_pending
from genomics.services.indexes import file_index_build
from genomics.services.ingest import file_ingest
from genomics.services.recompress import file_recompress, replaced_payloads_purge
from genomics.services.uploads import uploads_expire


@shared_task(name="genomics.tasks.ingest_file", ignore_result=True)
def ingest_file(file_id: str) -> None:
    file_ingest(file_id=file_id)


@shared_task(name="genomics.tasks.rotate_archive_key", ignore_result=True)
def rotate_archive_key() -> None:
    """Move files of a retiring archive key (services/archive_keys.py); on beat too, so a
    rotation interrupted by a crash or waiting for uploads goes on by itself."""
    if archive_key_rotation_pending():
        archive_key_rotate()


@shared_task(name="genomics.tasks.expire_uploads", ignore_result=True)
def expire_uploads() -> None:
    uploads_expire()


@shared_task(name="genomics.tasks.index_file", ignore_result=True)
def index_file(file_id: str) -> None:
    """Build the encrypted index of a file ingested before indexes existed."""
    file_index_build(file_id=file_id)


@shared_task(name="genomics.tasks.recompress_file", ignore_result=True)
def recompress_file(file_id: str) -> None:
    """Store a plain or gzip VCF bgzipped (services/recompress.py)."""
    file_recompress(file_id=file_id)


@shared_task(name="genomics.tasks.purge_replaced_payloads", ignore_result=True)
def purge_replaced_payloads() -> None:
    """On beat: delete payloads a recompression replaced, once downloads had their time."""
    replaced_payloads_purge()
