"""Sending Celery tasks without losing them when the broker is away.

A task sent while Redis is down would raise in the middle of a request (after its
transaction committed) and the work would be gone. Here the failure is logged and the
sender goes on: every task is idempotent and keyed by a row in a waiting state, so the
reconciler (`marketplace.tasks.reconcile`, on beat) sends it again once the broker is back.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def enqueue(task: Any, *args: object, countdown: float = 0) -> bool:
    """`task.delay(*args)` (after `countdown` seconds); False (logged) if the broker cannot
    take it now."""
    try:
        if countdown > 0:
            task.apply_async(args=args, countdown=countdown)
        else:
            task.delay(*args)
    except (OperationalError, OSError) as exc:
        logger.warning(
            "broker unavailable; %s%r will be sent again later: %s", task.name, args, exc
        )
        return False
    return True
