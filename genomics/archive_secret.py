"""The archive's Crypt4GH secret keys: worker-only (DESIGN.md trust boundaries).

Key files are `c4gh-v1`, passphrase-protected; the passphrase comes from
ARCHIVE_KEY_PASSPHRASE in the worker's environment or from ARCHIVE_KEY_PASSPHRASE_FILE.
Both reads go through `core.worker_secrets`, which refuses outside a worker.

Where a key's secret half lives: ARCHIVE_SECRET_KEY_FILE holds the active key; during a
rotation each key also has its own file next to it, named by its public key
(`archive_secret_key_path`), so the retiring key stays usable until its last header has
moved, whatever step of the rotation a crash interrupted.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.conf import settings

from core.worker_secrets import SecretMissing, read_secret, require_worker
from genomics import c4gh
from genomics.models import ArchiveKey


@lru_cache(maxsize=4)
def _unlock(content: bytes, passphrase: str) -> bytes:
    """Unlocking runs scrypt (deliberately slow): once per process and key file."""
    return c4gh.read_secret_key_file(content, passphrase)


def archive_secret_key_path(public_key: bytes) -> Path:
    """The file holding one key's secret half during a rotation (beside the main file)."""
    return Path(f"{settings.ARCHIVE_SECRET_KEY_FILE}.{public_key.hex()[:16]}")


def archive_key_passphrase() -> str:
    return (
        read_secret(
            what="the archive key passphrase",
            path=Path(settings.ARCHIVE_KEY_PASSPHRASE_FILE),
            env_var="ARCHIVE_KEY_PASSPHRASE",
        )
        .decode()
        .strip()
    )


def archive_secret_key(archive_key: ArchiveKey) -> bytes:
    """The secret half of `archive_key`, checked to match its public half.

    Raises NotInWorker outside a worker, SecretMissing when no key file holds it (a
    retired key's file is deleted).
    """
    require_worker("the archive secret key")
    public = bytes(archive_key.public_key)
    candidates = [archive_secret_key_path(public), Path(settings.ARCHIVE_SECRET_KEY_FILE)]
    passphrase: str | None = None
    failure: c4gh.InvalidKey | None = None
    for path in candidates:
        if not path.exists():
            continue
        content = read_secret(what="the archive secret key", path=path)
        passphrase = passphrase if passphrase is not None else archive_key_passphrase()
        try:
            secret = _unlock(content, passphrase)
        except c4gh.InvalidKey as exc:  # the other candidate may hold it
            failure = exc
            continue
        if c4gh.public_key_of(secret) == public:
            return secret
    if archive_key.retired_at is not None:
        raise SecretMissing("this archive key is retired: its secret key file was deleted")
    if passphrase is None:  # no file at all: say where it was looked for
        read_secret(what="the archive secret key", path=candidates[-1])
    if failure is not None:
        raise failure
    raise SecretMissing(
        "the archive secret key file does not match the archive's public key in the database"
    )
