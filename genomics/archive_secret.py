"""The archive's Crypt4GH secret key: worker-only (DESIGN.md trust boundaries).

The key file is `c4gh-v1`, passphrase-protected; the passphrase comes from
ARCHIVE_KEY_PASSPHRASE in the worker's environment or from ARCHIVE_KEY_PASSPHRASE_FILE.
Both reads go through `core.worker_secrets`, which refuses outside a worker.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.conf import settings

from core.worker_secrets import SecretMissing, read_secret
from genomics import c4gh
from genomics.models import ArchiveKey


@lru_cache(maxsize=2)
def _unlock(content: bytes, passphrase: str) -> bytes:
    """Unlocking runs scrypt (deliberately slow): once per process and key file."""
    return c4gh.read_secret_key_file(content, passphrase)


def archive_secret_key(archive_key: ArchiveKey) -> bytes:
    """The secret half of `archive_key`, checked to match its public half."""
    content = read_secret(
        what="the archive secret key", path=Path(settings.ARCHIVE_SECRET_KEY_FILE)
    )
    passphrase = (
        read_secret(
            what="the archive key passphrase",
            path=Path(settings.ARCHIVE_KEY_PASSPHRASE_FILE),
            env_var="ARCHIVE_KEY_PASSPHRASE",
        )
        .decode()
        .strip()
    )
    secret = _unlock(content, passphrase)
    if c4gh.public_key_of(secret) != bytes(archive_key.public_key):
        raise SecretMissing(
            "the archive secret key file does not match the archive's public key in the database"
        )
    return secret
