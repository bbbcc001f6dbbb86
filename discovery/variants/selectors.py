"""Reads over the variant index's bookkeeping."""

from __future__ import annotations

from uuid import UUID

from discovery.variants.tap import VARIANT_FORMATS
from genomics.models import GenomicFile


def files_without_variant_index() -> list[UUID]:
    """Ready VCF/BCF files that have no variant index yet."""
    return list(
        GenomicFile.objects.filter(
            state=GenomicFile.State.READY,
            format__in=VARIANT_FORMATS,
            variant_source__isnull=True,
        ).values_list("pk", flat=True)
    )
