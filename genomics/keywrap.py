"""Encryption of what a plaintext upload keeps between requests (its data key and an
unfinished segment), so that nothing readable rests in the database meanwhile.

The key-encryption key is derived from SECRET_KEY with HKDF (RFC 5869) under a purpose
label, so it is specific to this use; AEAD (ChaCha20-Poly1305) binds each blob to its file
id, so one file's state cannot be replayed into another.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

NONCE_BYTES = 12
_PURPOSE = b"genemarket/upload-state/v1"


def _kek() -> ChaCha20Poly1305:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        settings.SECRET_KEY.encode()
    )
    return ChaCha20Poly1305(key)


def seal(data: bytes, *, key: bytes | None, context: bytes) -> bytes:
    """Encrypt with `key` (32 bytes), or with the SECRET_KEY-derived key when None."""
    cipher = ChaCha20Poly1305(key) if key is not None else _kek()
    nonce = os.urandom(NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, data, context)


def unseal(blob: bytes, *, key: bytes | None, context: bytes) -> bytes:
    cipher = ChaCha20Poly1305(key) if key is not None else _kek()
    return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context)
