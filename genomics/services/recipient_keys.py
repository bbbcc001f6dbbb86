"""Registering a recipient's public key (a researcher's), in any format README "Key
formats" lists for researchers."""

from __future__ import annotations

from genomics import c4gh
from genomics.models import RecipientKeyOrigin


def recipient_key_register(*, text: str) -> c4gh.PublicKeyInfo:
    """Parse `text` and remember what it was given as (kind, fingerprint, comment), so the
    profile can show the key as the person knows it.

    Returns the parsed key (its `.key` is the X25519 bytes grants are made for).
    Raises c4gh.InvalidKey with a message for the person.
    """
    info = c4gh.describe_public_key(text)
    if info.kind != c4gh.keys.KIND_CRYPT4GH:
        RecipientKeyOrigin.objects.update_or_create(
            public_key=info.key,
            defaults={"kind": info.kind, "fingerprint": info.fingerprint, "comment": info.comment},
        )
    return info
