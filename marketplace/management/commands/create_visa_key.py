"""Create the worker-only key that signs GA4GH Passport visas (README "Passports").

Writes an EC P-256 private key to VISA_SIGNING_KEY_FILE (mode 0600) and publishes its
public key in /.well-known/jwks.json. Give the file (or its contents as VISA_SIGNING_KEY)
to the worker only; the web never reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketplace.services.visas import visa_key_create


class Command(BaseCommand):
    help = "Create the visa signing key (worker-only) and publish its public key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="do nothing when the key file exists (for scripted set-up)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.VISA_SIGNING_KEY_FILE)
        try:
            key = visa_key_create(path=path)
        except FileExistsError as exc:
            if options["if_missing"]:
                # The worker publishes this key's public half when it first signs with it.
                self.stdout.write("The visa signing key exists; nothing to do.")
                return
            raise CommandError(f"{path} exists already; move it away to make a new key.") from exc
        self.stdout.write(f"Visa signing key written to {path} (mode 0600, worker-only).")
        self.stdout.write(f"Public key published in the JWKS with kid {key.kid}.")
