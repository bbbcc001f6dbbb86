"""Wallet reads, for other apps (the profile shows the linked address)."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser

from ledger.models import WalletLink


def wallet_address_of(*, user: AbstractBaseUser) -> str | None:
    link = WalletLink.objects.filter(user_id=user.pk).only("address").first()
    return link.address if link else None
