"""Ledger Celery tasks: thin wrappers that beat schedules."""

from __future__ import annotations

import logging

from celery import shared_task

from core.errors import ServiceUnavailable
from ledger.services.indexer import indexer_run
from ledger.services.sender import operator_transactions_poll

logger = logging.getLogger(__name__)


@shared_task(name="ledger.tasks.index_chain", ignore_result=True)
def index_chain() -> None:
    try:
        run = indexer_run()
    except ServiceUnavailable as exc:  # not deployed yet: nothing to index
        logger.debug("%s", exc)
        return
    if run.applied or run.reverted:
        logger.info(
            "indexed to block %s: %s applied, %s reverted",
            run.checkpoint,
            run.applied,
            run.reverted,
        )


@shared_task(name="ledger.tasks.poll_operator_transactions", ignore_result=True)
def poll_operator_transactions() -> None:
    operator_transactions_poll()
