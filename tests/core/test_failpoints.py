"""Failpoints pause the first task that reaches them, once, and nothing when unset."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from core.failpoints import failpoint


def test_an_unset_failpoint_does_nothing(settings, tmp_path: Path) -> None:
    settings.FAILPOINTS, settings.FAILPOINT_DIR = frozenset(), tmp_path
    failpoint("grant.headers_written")
    assert list(tmp_path.iterdir()) == []


def test_a_set_failpoint_pauses_the_first_arrival_only(settings, tmp_path: Path) -> None:
    settings.FAILPOINTS = frozenset({"grant.headers_written"})
    settings.FAILPOINT_DIR, settings.FAILPOINT_PAUSE_S = tmp_path / "points", 1.0
    first = threading.Thread(target=failpoint, args=("grant.headers_written",))
    first.start()
    marker = tmp_path / "points" / "grant.headers_written"
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists() and first.is_alive()  # held there, for a test to kill it
    started = time.monotonic()
    failpoint("grant.headers_written")  # the redelivered task goes on at once
    assert time.monotonic() - started < 0.5
    first.join()
