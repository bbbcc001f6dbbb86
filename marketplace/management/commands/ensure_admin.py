"""Create the first admin from ADMIN_USER / ADMIN_PASSWORD / ADMIN_EMAIL if missing."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from marketplace.services.demo import admin_ensure


class Command(BaseCommand):
    help = "Create the admin account named by ADMIN_USER if it does not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        user, created = admin_ensure(
            username=settings.ADMIN_USER,
            password=settings.ADMIN_PASSWORD,
            email=settings.ADMIN_EMAIL,
        )
        if created:
            self.stdout.write(f"Created admin {user.username!r} (password from ADMIN_PASSWORD).")
        else:
            self.stdout.write(f"Admin {user.username!r} exists; its password is unchanged.")
