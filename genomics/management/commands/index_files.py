"""`manage.py index_files`: queue the index build of every ready, sliceable file that has
none (files ingested before indexes existed); the worker builds them (`index_file`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.queue import enqueue
from genomics.services.indexes import files_index_missing
from genomics.tasks import index_file


class Command(BaseCommand):
    help = "Queue index builds (BAI/TBI/CSI/CRAI) for ready files that have no index."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        ids = files_index_missing(limit=options["limit"])
        queued = sum(enqueue(index_file, file_id) for file_id in ids)
        self.stdout.write(f"{queued} of {len(ids)} files queued for indexing")
