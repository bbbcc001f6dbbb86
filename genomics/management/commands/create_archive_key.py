"""Create the archive's Crypt4GH keypair, or rotate it (`--replace`: a new key for new
files, and the worker moves every stored header and grant to it in the background; see
`genomics/services/archive_keys.py` and `manage.py archive_key_status`).

The passphrase comes from ARCHIVE_KEY_PASSPHRASE, or is generated and written to
ARCHIVE_KEY_PASSPHRASE_FILE (mode 0600) for the embedded run; in production keep it in
your secret store and give it to the worker only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import Conflict
from genomics import c4gh
from genomics.models import ArchiveKey
from genomics.services.archive_keys import archive_key_create


class Command(BaseCommand):
    help = "Create the archive Crypt4GH keypair (secret key passphrase-protected, worker-only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--replace",
            action="store_true",
            help="rotate: a new active key; the worker moves every stored file to it",
        )
        parser.add_argument(
            "--import",
            dest="import_path",
            type=Path,
            help="use the secret key in this file (any Crypt4GH tool's key file, protected "
            "by ARCHIVE_KEY_PASSPHRASE or unprotected) instead of making a new one",
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="do nothing when a key exists (for scripted set-up)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        secret_path = Path(settings.ARCHIVE_SECRET_KEY_FILE)
        passphrase = os.environ.get("ARCHIVE_KEY_PASSPHRASE", "")
        passphrase_file = Path(settings.ARCHIVE_KEY_PASSPHRASE_FILE)
        exists = ArchiveKey.objects.filter(active=True).exists()
        if exists and options["if_missing"]:
            self.stdout.write("The archive key exists; nothing to do.")
            return
        if exists and not options["replace"]:
            raise CommandError("An archive key exists already; pass --replace to rotate it.")
        imported = options["import_path"].read_bytes() if options["import_path"] else None
        if not passphrase and passphrase_file.exists():
            # One passphrase for every archive key file: a rotation's retiring key stays
            # readable with it (a new passphrase would lock the old key out).
            passphrase = passphrase_file.read_text().strip()
        if not passphrase:
            passphrase = secrets.token_urlsafe(32)
            passphrase_file.parent.mkdir(parents=True, exist_ok=True)
            passphrase_file.touch(mode=0o600)
            passphrase_file.write_text(passphrase)
            self.stdout.write(f"Generated a passphrase in {passphrase_file} (mode 0600).")
        try:
            key = archive_key_create(
                secret_key_path=secret_path,
                passphrase=passphrase,
                replace=options["replace"],
                imported_key_file=imported,
            )
        except Conflict as exc:
            raise CommandError(exc.message) from exc
        except c4gh.InvalidKey as exc:
            raise CommandError(f"The key file to import cannot be used: {exc}") from exc
        self.stdout.write(f"Secret key written to {secret_path} (mode 0600, passphrase-protected).")
        if options["replace"]:
            self.stdout.write(
                "Rotation started: the worker moves every stored file to the new key; the "
                "old key stays usable until then. Follow it with `manage.py archive_key_status`."
            )
        self.stdout.write("Public key:\n" + c4gh.public_key_text(bytes(key.public_key)))
