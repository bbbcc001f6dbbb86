"""Browser-session clients for page tests, including staff who passed the second factor."""

from __future__ import annotations

from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from marketplace.models import User


def logged_in(user: User, *, second_factor: bool = True) -> Client:
    """A client with `user`'s session; staff also pass the second factor unless told not
    to, as django_otp.login would record it."""
    client = Client()
    client.force_login(user)
    from marketplace.selectors.committees import is_committee_member

    if second_factor and (user.is_staff or is_committee_member(user)):
        device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        session = client.session
        session["otp_device_id"] = device.persistent_id
        session.save()
    return client
