"""`manage.py htsget_ticketer`: the worker-side htsget ticket service (genomics/ticketer.py).

Started by `make run` beside the Celery worker, with the worker's environment: it reads the
archive key, so it runs where the worker runs, never in the web's process or account."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.worker_secrets import mark_worker_process
from genomics.ticketer import serve


class Command(BaseCommand):
    help = "Serve htsget tickets on the worker side (Unix socket HTSGET_TICKETER_SOCKET)."

    def handle(self, *args: Any, **options: Any) -> None:
        mark_worker_process()
        serve()
