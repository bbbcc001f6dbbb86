"""Worker-only MACs over what the worker signed (RELIABILITY.md 23).

The web tier can write every row of the shared database. A voucher row it flipped, or an
operator-transaction row it forged, must not make the worker disclose data or sign: the
worker MACs what it wrote with a key only it can derive (HMAC-SHA256 under a key derived
from the operator key by HKDF, so no extra secret needs managing), and checks the MAC
before it acts on the row again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.operator import operator_account

_INFO = b"genemarket worker row MAC v1"


@lru_cache(maxsize=4)
def _key_for(operator_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(operator_key)


def _key() -> bytes:
    return _key_for(bytes(operator_account().key))


def row_mac(kind: str, fields: dict[str, object]) -> str:
    """Hex HMAC-SHA256 of `kind` and `fields` (canonical JSON); worker only."""
    message = json.dumps([kind, fields], sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def row_mac_valid(kind: str, fields: dict[str, object], mac: str) -> bool:
    return bool(mac) and hmac.compare_digest(row_mac(kind, fields), mac)
