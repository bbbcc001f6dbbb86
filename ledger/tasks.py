"""Ledger Celery tasks: thin wrappers that beat schedules."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from core.errors import ServiceUnavailable
from ledger import chain, pinned
from ledger.services.indexer import indexer_run
from ledger.services.sender import operator_transactions_poll

logger = logging.getLogger(__name__)


class ChainTask(Task):
    """A task that sends an operator transaction: while the chain node is unreachable it
    tries again, backing off to a minute (each step is idempotent); after that the
    reconciler (marketplace/services/reconcile.py) sends it again."""

    autoretry_for = chain.UNREACHABLE
    retry_backoff = True
    retry_backoff_max = 60
    max_retries = 12


@shared_task(name="ledger.tasks.index_chain", ignore_result=True)
def index_chain() -> None:
    try:
        run = indexer_run()
    except ServiceUnavailable as exc:  # not deployed yet: nothing to index
        logger.debug("%s", exc)
        return
    except chain.UNREACHABLE as exc:  # the next run starts from the same checkpoint
        logger.warning("chain node unreachable, indexing waits: %s", type(exc).__name__)
        return
    except pinned.MarketMismatch as exc:
        logger.error("%s", exc)
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
    try:
        operator_transactions_poll()
    except chain.UNREACHABLE as exc:  # nothing changes in the database: the next poll redoes it
        logger.warning("chain node unreachable, operator transactions wait: %s", type(exc).__name__)
