"""Account reads."""

from __future__ import annotations

from marketplace.models import User


def user_profile(*, user: User) -> dict[str, object]:
    """The fields of `GET /api/v1/me` (API.md).

    `crypt4gh_public_key` and `wallet_address` are filled once key registration and
    wallet linking (the vault and ledger issues) land; until then they are null.
    """
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "public_name": user.display_name,
        "is_staff": user.is_staff,
        "crypt4gh_public_key": None,
        "wallet_address": None,
    }
