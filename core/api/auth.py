"""The signed-in user of an API request, typed for the apps that cannot import
`marketplace` (where the concrete user model lives)."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework.request import Request

from core.errors import PermissionDenied


def request_user(request: Request) -> AbstractBaseUser:
    """The request's user; views call this only behind IsAuthenticated."""
    user = request.user
    if not isinstance(user, AbstractBaseUser) or not user.is_authenticated:
        raise PermissionDenied("Log in first.")
    return user
