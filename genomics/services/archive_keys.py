"""Creating the archive keypair (`manage.py create_archive_key`)."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from core.errors import Conflict
from genomics import c4gh
from genomics.models import ArchiveKey


def archive_key_create(
    *,
    secret_key_path: Path,
    passphrase: str,
    replace: bool = False,
    imported_key_file: bytes | None = None,
) -> ArchiveKey:
    """Make the archive keypair: the secret half to a passphrase-protected file, the
    public half to the database for the web process and the donors.

    With `imported_key_file` (the content of a secret key file any Crypt4GH tool wrote,
    README "Key formats", readable with `passphrase` or unprotected), that key is used
    instead of a new one, and rewritten as `c4gh-v1` protected by `passphrase`.
    Raises Conflict, or c4gh.InvalidKey when the imported file cannot be read.

    Refuses to replace an active key unless asked: files already stored are encrypted to
    it (rotation means re-encrypting every header, a separate operation).
    """
    with transaction.atomic():
        current = ArchiveKey.objects.select_for_update().filter(active=True).first()
        if current is not None and not replace:
            raise Conflict("An archive key exists already; pass --replace to rotate it.")
        if imported_key_file is not None:
            secret = c4gh.read_secret_key_file(imported_key_file, passphrase)
            public = c4gh.public_key_of(secret)
        else:
            secret, public = c4gh.generate_keypair()
        c4gh.write_secret_key_file(
            secret_key_path, secret, passphrase, comment="genemarket archive key"
        )
        if current is not None:
            current.active = False
            current.save(update_fields=["active"])
        return ArchiveKey.objects.create(public_key=public)
