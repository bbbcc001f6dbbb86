"""GA4GH Passport visas of our grants, and the public keys that verify them (README
"Passports"; GA4GH Passport v1.2 "Visa Format").

A visa is signed by the worker (the only holder of the visa signing key) and kept here so
the web can hand it out without any key. Rows are a cache of what the worker signed, never
a proof: the token carries its own signature, and `visa_verify` checks it against the
request's live state as well.
"""

from __future__ import annotations

import uuid

from django.db import models


class VisaKey(models.Model):
    """A public key of the visa signing key, published in /.well-known/jwks.json.

    `kid` is the key's RFC 7638 thumbprint; `public_jwk` the public JWK (RFC 7517) with its
    `kid`, `alg` and `use`. Written by `create_visa_key` and by the worker when it signs."""

    kid = models.CharField(primary_key=True, max_length=64)
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"visa key {self.kid}"


class Visa(models.Model):
    """One signed visa (a JWS compact string) of one grant; `id` is its `jti`.

    `grant_ends_at` and `grant_mac` are the worker's record of the grant it made (a
    worker-only MAC, ledger.integrity): it re-issues visas from this record, never from
    request rows the web tier could have written (RELIABILITY.md 23). A row without a
    token is that record alone, waiting for the signing key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(
        "marketplace.AccessRequest", on_delete=models.CASCADE, related_name="visas"
    )
    kid = models.CharField(max_length=64, blank=True)
    token = models.TextField(blank=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    grant_ends_at = models.DateTimeField()
    grant_mac = models.CharField(max_length=64)

    class Meta:
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["request", "expires_at"])]

    def __str__(self) -> str:
        return f"visa {self.pk} of {self.request_id}"
