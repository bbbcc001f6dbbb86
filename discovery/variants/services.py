"""Indexing files that were ingested before the variant index existed (worker only)."""

from __future__ import annotations

import logging

from django.db import transaction

from discovery.models import VariantSource
from discovery.variants.tap import VariantTap
from genomics.models import GenomicFile
from genomics.services.plaintext import file_plaintext

logger = logging.getLogger(__name__)


def variants_index_file(*, upload: GenomicFile) -> VariantSource | None:
    """Decrypt one ready VCF/BCF once more and index it, as ingest would have. Idempotent
    (a file already indexed is left alone); None when nothing could be indexed."""
    if VariantSource.objects.filter(file=upload).exists():
        return None
    tap = VariantTap(upload)
    try:
        for block in file_plaintext(upload=upload):
            tap.feed(block)
        with transaction.atomic():
            tap.commit(file_format=upload.format, metadata=upload.metadata)
    finally:
        tap.abort()
    return VariantSource.objects.filter(file=upload).first()
