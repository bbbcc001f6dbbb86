"""Index the variant sites of files ingested before the variant index existed. Indexing
decrypts, so the command queues one task per file for the worker (the only process with
the archive key)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.queue import enqueue
from discovery.tasks import index_variants
from discovery.variants.selectors import files_without_variant_index


class Command(BaseCommand):
    help = "Queue the Beacon's variant indexing of every ready VCF/BCF that has none."

    def handle(self, *args: Any, **options: Any) -> None:
        queued = sum(enqueue(index_variants, str(pk)) for pk in files_without_variant_index())
        self.stdout.write(f"{queued} file(s) queued for variant indexing.")
