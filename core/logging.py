"""Log record enrichment: the Celery task id next to the request id (from django-guid)."""

from __future__ import annotations

import logging

from celery import current_task


class CeleryTaskFilter(logging.Filter):
    """Add `task_id` and `task_name` to every record logged inside a running Celery task.

    Outside a task both are "-", so one format string serves web and worker processes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        task = current_task
        request = getattr(task, "request", None) if task else None
        task_id = getattr(request, "id", None) if request is not None else None
        record.task_id = task_id or "-"
        record.task_name = getattr(task, "name", None) if task_id else "-"
        if not getattr(record, "request_id", None):
            record.request_id = "-"
        return True
