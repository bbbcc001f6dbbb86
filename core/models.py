"""Operational records shared by the apps."""

from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """When a worker last ran the beat-scheduled heartbeat task: proof that beat publishes
    and a worker consumes (workers can silently stop consuming, celery #8030)."""

    name = models.CharField(max_length=64, primary_key=True)
    last_seen = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_seen:%Y-%m-%d %H:%M:%S}"
