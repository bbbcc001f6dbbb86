"""What a recipient's X25519 key is, as its owner knows it."""

from __future__ import annotations

from genomics import c4gh
from genomics.models import RecipientKeyOrigin


def recipient_key_describe(*, public_key: bytes) -> c4gh.PublicKeyInfo:
    """The kind, label and fingerprint of `public_key` (32 X25519 bytes): as it was given
    when it came as an SSH or OpenSSL key, else as a Crypt4GH key."""
    origin = RecipientKeyOrigin.objects.filter(public_key=public_key).first()
    if origin is None:
        return c4gh.PublicKeyInfo(
            public_key, c4gh.keys.KIND_CRYPT4GH, c4gh.keys.fingerprint(public_key)
        )
    return c4gh.PublicKeyInfo(public_key, origin.kind, origin.fingerprint, origin.comment)
