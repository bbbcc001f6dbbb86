"""Writes of the core app."""

from __future__ import annotations

from django.utils import timezone

from core.models import Heartbeat

WORKER_HEARTBEAT = "worker"


def heartbeat_record(*, name: str = WORKER_HEARTBEAT, hostname: str = "") -> Heartbeat:
    beat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"last_seen": timezone.now(), "hostname": hostname}
    )
    return beat
