"""Worker-only MACs over what the worker signed (RELIABILITY.md 23).

The web tier can write every row of the shared database. A voucher row it flipped, or an
operator-transaction row it forged, must not make the worker disclose data or sign: the
worker MACs what it wrote (HMAC-SHA256) with a key only it holds, and checks the MAC
before it acts on the row again.

The key is its own worker-only secret (WORKER_MAC_KEY in the worker's environment, or the
file WORKER_MAC_KEY_FILE), not derived from the operator key: the operator key rotates,
and the rows signed before a rotation (outstanding vouchers, in-flight transactions) must
stay verifiable. On a machine where neither exists the first worker creates the file
(32 random bytes, mode 0600), as `make run` needs; production settings require it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from django.conf import settings

from core.worker_secrets import SecretMissing, read_secret, require_worker


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another worker made it first
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))


def _key() -> bytes:
    require_worker("the worker's row MAC key")
    path = Path(settings.WORKER_MAC_KEY_FILE)
    try:
        raw = read_secret(what="the worker's row MAC key", path=path, env_var="WORKER_MAC_KEY")
    except SecretMissing:
        if settings.WORKER_MAC_KEY_REQUIRED:
            raise
        _create(path)
        raw = read_secret(what="the worker's row MAC key", path=path, env_var="WORKER_MAC_KEY")
    key = raw.strip()
    if len(key) < 32:
        raise SecretMissing("the worker's row MAC key must hold at least 32 characters")
    return key


def row_mac(kind: str, fields: dict[str, object]) -> str:
    """Hex HMAC-SHA256 of `kind` and `fields` (canonical JSON); worker only."""
    message = json.dumps([kind, fields], sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def row_mac_valid(kind: str, fields: dict[str, object], mac: str) -> bool:
    return bool(mac) and hmac.compare_digest(row_mac(kind, fields), mac)
