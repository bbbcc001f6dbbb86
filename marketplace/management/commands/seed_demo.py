"""Seed the demo accounts (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from marketplace.services.demo import DEMO_PASSWORD, demo_seed


class Command(BaseCommand):
    help = "Create demo donor, researcher and reviewer accounts if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        for user in demo_seed():
            self.stdout.write(f"  {user.role:<11} {user.username}  (password {DEMO_PASSWORD})")
