"""Failpoints: named places in the worker's code where a fault test can stop a task so
that it can kill the process exactly there (the way etcd's gofail and TiKV's fail-rs do).

A grant or a release takes milliseconds, so a test cannot SIGKILL a worker "in the
middle" of one by timing alone. With `FAILPOINTS=grant.headers_written` in the worker's
environment, the first task to reach `failpoint("grant.headers_written")` creates
`FAILPOINT_DIR/grant.headers_written` and sleeps; the test waits for that file, kills the
worker, and the task's next delivery finds the file and goes on. In production
FAILPOINTS is empty and a failpoint is one set lookup.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


def failpoint(name: str) -> None:
    """Pause here once (for FAILPOINT_PAUSE_S) when `name` is in FAILPOINTS."""
    if name not in settings.FAILPOINTS:
        return
    marker = Path(settings.FAILPOINT_DIR) / name
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return  # reached before: the test has had its chance
    logger.warning("failpoint %s reached: pausing %.0f s", name, settings.FAILPOINT_PAUSE_S)
    time.sleep(settings.FAILPOINT_PAUSE_S)
