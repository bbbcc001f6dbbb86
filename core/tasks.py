"""Core Celery tasks."""

from __future__ import annotations

import logging
import socket

from celery import shared_task

from core.services import heartbeat_record

logger = logging.getLogger(__name__)


@shared_task(name="core.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    heartbeat_record(hostname=socket.gethostname())
    logger.info("worker heartbeat recorded")
