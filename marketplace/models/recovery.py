"""Recovery codes for staff's second factor (issue 16 §11): one-time codes that stand in
for the authenticator app when it is lost. Only their SHA-256 is stored (each code holds
80 random bits, so a hash without a slow KDF cannot be reversed by guessing); the codes
themselves are shown once, when made."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin


def recovery_code_digest(code: str) -> str:
    """SHA-256 (hex) of a code as typed: case, spaces and dashes do not matter."""
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """A django-otp device whose tokens are the user's unused recovery codes, so a code
    passes the second factor through `django_otp.login` as the TOTP device does; wrong
    guesses slow down exponentially (ThrottlingMixin)."""

    # Device's own field, with a reverse name of ours. django-otp ships no types, so the
    # django-stubs plugin sees this model's base as Any (hence the annotation here and the
    # ignore on User for the reverse manager it cannot resolve).
    user: models.ForeignKey[Any, Any] = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_code_devices"
    )

    def get_throttle_factor(self) -> int:
        return 1

    def verify_token(self, token: object) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed or not isinstance(token, str):
            return False
        digest = recovery_code_digest(token)
        with transaction.atomic():
            unused = RecoveryCode.objects.select_for_update().filter(device=self, used_at=None)
            match = next((c for c in unused if hmac.compare_digest(c.code_sha256, digest)), None)
            if match is None:
                self.throttle_increment()
                return False
            match.used_at = timezone.now()
            match.save(update_fields=["used_at"])
            self.throttle_reset()
        return True


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code of {self.device.user_id}" + (" (used)" if self.used_at else "")


__all__ = ["RecoveryCode", "RecoveryCodeDevice", "recovery_code_digest"]
