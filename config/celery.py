"""The Celery app. Tasks live in each app's `tasks.py` and are found by autodiscovery.

Delivery is at least once: a task is acknowledged only after it ran (`acks_late`) and is
requeued when its pool process dies (`task_reject_on_worker_lost`, celery #1628), so every
task must be idempotent. Prefetch is one so a killed worker holds back no other task.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("genemarket")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_track_started=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
)


app.autodiscover_tasks()


@worker_init.connect
def _mark_worker(**_: object) -> None:
    """Only a worker may load the archive and operator keys (core.worker_secrets)."""
    from core.worker_secrets import mark_worker_process

    mark_worker_process()


@worker_ready.connect
def _check_pinned_market(**_: object) -> None:
    """Refuse to run when the database names another market than MARKET_ADDRESS: the
    worker acts only on the market pinned in its own configuration (ledger/pinned.py)."""
    from ledger.pinned import MarketMismatch, check_deployment_agrees

    try:
        check_deployment_agrees()
    except MarketMismatch as exc:
        import logging
        import os

        logging.getLogger(__name__).critical("%s", exc)
        os._exit(78)  # EX_CONFIG: a supervisor must not restart it into the same state
