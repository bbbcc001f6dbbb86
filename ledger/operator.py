"""The operator's chain account: worker-only (core.worker_secrets).

Loaded from OPERATOR_PRIVATE_KEY in the worker's environment, or from the file named by
OPERATOR_KEY_FILE. The web process never calls this; if it did, it would get NotInWorker.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.conf import settings
from eth_account import Account
from eth_account.signers.local import LocalAccount

from core.worker_secrets import SecretMissing, read_secret


@lru_cache(maxsize=1)
def _account_from(raw: bytes) -> LocalAccount:
    try:
        return Account.from_key(raw.decode().strip())
    except (ValueError, UnicodeDecodeError) as exc:
        raise SecretMissing("the operator key is not a 32-byte hex private key") from exc


def operator_account() -> LocalAccount:
    path = Path(settings.OPERATOR_KEY_FILE) if settings.OPERATOR_KEY_FILE else None
    raw = read_secret(what="the operator chain key", path=path, env_var="OPERATOR_PRIVATE_KEY")
    return _account_from(raw)
