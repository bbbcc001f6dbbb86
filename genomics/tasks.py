"""Genomics Celery tasks: thin, ids in, services do the work."""

from __future__ import annotations

from celery import shared_task

from genomics.services.ingest import file_ingest
from genomics.services.uploads import uploads_expire


@shared_task(name="genomics.tasks.ingest_file", ignore_result=True)
def ingest_file(file_id: str) -> None:
    file_ingest(file_id=file_id)


@shared_task(name="genomics.tasks.expire_uploads", ignore_result=True)
def expire_uploads() -> None:
    uploads_expire()
