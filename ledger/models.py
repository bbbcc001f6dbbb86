"""Ledger records. Wallet linking: a user proves control of an address with Sign-In with
Ethereum (EIP-4361) and the address becomes theirs to pay from and be paid to."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class WalletChallenge(models.Model):
    """A single-use SIWE nonce issued to one user for one address, valid for minutes.

    The exact message is kept so verification compares what was issued, field by field,
    not what the client chose to send back.
    """

    nonce = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet_challenges"
    )
    address = models.CharField(max_length=42)
    domain = models.CharField(max_length=255)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"challenge {self.nonce[:8]} for {self.address}"


class WalletLink(models.Model):
    """The address linked to a user: one per user, and one user per address at a time."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet_link"
    )
    # EIP-55 checksummed; unique so an address can never be linked to two accounts.
    address = models.CharField(max_length=42, unique=True)
    linked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.address
