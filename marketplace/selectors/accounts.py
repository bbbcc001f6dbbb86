"""Account reads."""

from __future__ import annotations

from genomics import c4gh
from genomics.selectors.recipient_keys import recipient_key_describe
from ledger.selectors.wallets import wallet_address_of
from marketplace.models import User


def user_profile(*, user: User) -> dict[str, object]:
    """The fields of `GET /api/v1/me` (API.md); the key's type and fingerprint let the
    researcher recognise it (an SSH key by the fingerprint `ssh-keygen -l` prints)."""
    key = bytes(user.crypt4gh_public_key) if user.crypt4gh_public_key else None
    info = recipient_key_describe(public_key=key) if key else None
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "public_name": user.display_name,
        "institution": user.institution,
        "is_staff": user.is_staff,
        "crypt4gh_public_key": (
            c4gh.public_key_text(bytes(user.crypt4gh_public_key))
            if user.crypt4gh_public_key
            else None
        ),
        "crypt4gh_key_type": info.label if info else None,
        "crypt4gh_key_fingerprint": info.fingerprint if info else None,
        "wallet_address": wallet_address_of(user=user),
    }
