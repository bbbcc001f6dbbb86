"""Staff recovery codes for the second factor (issue 16 §11): made in a batch and shown
once, stored as SHA-256 only, each usable once instead of the authenticator's code;
making and using them is audited."""

from __future__ import annotations

import base64
import secrets

from django.db import transaction

from core.errors import PermissionDenied
from marketplace.models import RecoveryCode, RecoveryCodeDevice, User
from marketplace.models.recovery import recovery_code_digest
from marketplace.services.audit import audit_append

RECOVERY_CODE_COUNT = 10
DEVICE_NAME = "Recovery codes"


def _new_code() -> str:
    """80 random bits as 16 base32 letters and digits, in groups of four: abcd-efgh-…"""
    text = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def recovery_codes_make(*, user: User) -> list[str]:
    """Replace `user`'s recovery codes with RECOVERY_CODE_COUNT new ones and return them:
    the only time they exist in clear. Raises PermissionDenied for a non-staff account
    (only staff sign in with a second factor)."""
    if not user.is_staff:
        raise PermissionDenied("Only staff sign in with a second factor.")
    codes = [_new_code() for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        device, _ = RecoveryCodeDevice.objects.get_or_create(
            user=user, defaults={"name": DEVICE_NAME, "confirmed": True}
        )
        device.codes.all().delete()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(device=device, code_sha256=recovery_code_digest(c)) for c in codes
        )
        audit_append(
            action="account.recovery_codes_make",
            actor=user,
            object_type="user",
            object_id=user.pk,
            data={"count": len(codes)},
        )
    return codes


def recovery_codes_left(*, user: User) -> int:
    return RecoveryCode.objects.filter(device__user=user, used_at=None).count()


def recovery_code_use(*, user: User, code: str) -> RecoveryCodeDevice | None:
    """Spend one of `user`'s recovery codes: the device to pass the second factor with
    (`django_otp.login`), or None when the code is wrong, used or throttled. A use is
    audited with the number of codes left."""
    device = RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return None
    with transaction.atomic():
        if not device.verify_token(code):
            return None
        audit_append(
            action="account.recovery_code_use",
            actor=user,
            object_type="user",
            object_id=user.pk,
            data={"left": recovery_codes_left(user=user)},
        )
    return device
