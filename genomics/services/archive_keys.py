"""Creating the archive keypair (`manage.py create_archive_key`)."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from core.errors import Conflict
from genomics import c4gh
from genomics.models import ArchiveKey


def archive_key_create(
    *, secret_key_path: Path, passphrase: str, replace: bool = False
) -> ArchiveKey:
    """Make the archive keypair: the secret half to a passphrase-protected file, the
    public half to the database for the web process and the donors.

    Refuses to replace an active key unless asked: files already stored are encrypted to
    it (rotation means re-encrypting every header, a separate operation).
    """
    with transaction.atomic():
        current = ArchiveKey.objects.select_for_update().filter(active=True).first()
        if current is not None and not replace:
            raise Conflict("An archive key exists already; pass --replace to rotate it.")
        secret, public = c4gh.generate_keypair()
        c4gh.write_secret_key_file(
            secret_key_path, secret, passphrase, comment="genemarket archive key"
        )
        if current is not None:
            current.active = False
            current.save(update_fields=["active"])
        return ArchiveKey.objects.create(public_key=public)
