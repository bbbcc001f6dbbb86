"""Discovery Celery tasks: thin, ids in, services do the work."""

from __future__ import annotations

from celery import shared_task

from discovery.variants.services import variants_index_file
from genomics.models import GenomicFile


@shared_task(name="discovery.tasks.index_variants", ignore_result=True)
def index_variants(file_id: str) -> None:
    """Index one ready file's variants (it decrypts: worker only)."""
    upload = GenomicFile.objects.select_related("archive_key").filter(pk=file_id).first()
    if upload is not None:
        variants_index_file(upload=upload)
