"""Recompute the catalogue's consent-filter tokens of every dataset (after the shipped DUO or
MONDO extract, or the matcher's rules, changed: MATCHER_VERSION tells)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from marketplace.consent import MATCHER_VERSION
from marketplace.services.datasets import datasets_consent_reindex


class Command(BaseCommand):
    help = "Recompute every dataset's precomputed consent fits (Dataset.duo_fits)."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = datasets_consent_reindex()
        self.stdout.write(f"{changed} datasets changed (consent matcher {MATCHER_VERSION}).")
