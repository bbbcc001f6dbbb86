"""The signed-in user of an API request, typed for the apps that cannot import
`marketplace` (where the concrete user model lives), and the bearer form of API tokens."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request

from core.errors import PermissionDenied


def request_user(request: Request) -> AbstractBaseUser:
    """The request's user; views call this only behind IsAuthenticated."""
    user = request.user
    if not isinstance(user, AbstractBaseUser) or not user.is_authenticated:
        raise PermissionDenied("Log in first.")
    return user


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <token>`, the GA4GH convention (DRS 1.4 `BearerAuth`, htsget
    1.3 "Authentication"), accepting the same API tokens as `Authorization: Token <token>`.

    A 401 then says `WWW-Authenticate: Bearer` on views that list this class first.
    """

    keyword = "Bearer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer form apart from DRF's `Token` form (both are the same tokens)."""

    target_class = "core.api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str] | list[dict[str, str]]:
        return {"type": "http", "scheme": "bearer"}
