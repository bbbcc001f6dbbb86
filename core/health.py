"""Health checks for `/health`: each one answers within a few seconds or counts as failing.

A check returns nothing when healthy and raises when not; `run_checks` names what failed
with a short message that holds no URL or credential.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from kombu import Connection

from core.models import Heartbeat
from core.services import WORKER_HEARTBEAT
from ledger import chain

CHECK_TIMEOUT_S = 3.0
STORAGE_PROBE_NAME = "health/probe"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    duration_ms: float


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    """Open a connection to the Celery broker; for Redis, also round-trip a PING."""
    with Connection(
        settings.CELERY_BROKER_URL,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        connect_timeout=CHECK_TIMEOUT_S,
    ) as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=int(CHECK_TIMEOUT_S)
        )
        channel = conn.default_channel  # type: ignore[attr-defined]
        client = getattr(channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()


def check_storage() -> None:
    """Write, read and delete a probe: uploads need writable storage, not just a folder."""
    name = default_storage.save(STORAGE_PROBE_NAME, ContentFile(b"ok"))
    try:
        with default_storage.open(name) as probe:
            if probe.read() != b"ok":
                raise OSError("storage returned different bytes than were written")
    finally:
        default_storage.delete(name)


def check_chain() -> None:
    chain.block_number()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
    "chain": check_chain,
}

FAILURE_MESSAGES = {
    "database": "the database does not answer",
    "broker": "the task broker does not answer",
    "storage": "file storage is not writable",
    "chain": "the chain node does not answer",
}


def run_checks() -> list[CheckResult]:
    results = []
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:
            detail = f"{FAILURE_MESSAGES[name]} ({type(exc).__name__})"
            ok = False
        else:
            detail, ok = "ok", True
        results.append(CheckResult(name, ok, detail, round((time.monotonic() - started) * 1000, 1)))
    return results


def worker_last_seen() -> str | None:
    """When a worker last ran the heartbeat task (ISO time), or None if never.

    Informational: a worker can be busy for a while, so this does not fail /health.
    """
    beat = Heartbeat.objects.filter(name=WORKER_HEARTBEAT).first()
    return beat.last_seen.isoformat() if beat else None
