"""A GA4GH Passport visa of ours as authorization for the GA4GH endpoints (htsget, DRS).

`Authorization: Bearer <visa>`: a JWS (three dot-separated parts; our API tokens are hex)
is checked by `visa_verify` (signature against our JWKS, claims, and the grant itself, so a
revoked grant's visa is refused at once, before its `exp`). The request is then
authenticated as the visa's researcher, with `request.auth` the `VisaScope`: a visa
authorizes the one dataset it names (its `value`), not the researcher's other grants.

Other services cannot learn of a revocation before a visa's `exp` (Passport v1.2 "Token
Revocation"): ours live VISA_LIFETIME_S at most and are re-issued while the grant lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from marketplace.models import AccessRequest, User
from marketplace.selectors.scope import request_files
from marketplace.selectors.visas import VisaGrantEnded, VisaRefused, visa_verify


@dataclass(frozen=True)
class VisaScope:
    """What a visa authorizes: the files one granted request covers (its dataset's, or
    its region tier's objects only: README "Selling regions")."""

    request: AccessRequest

    @property
    def dataset_id(self) -> UUID:
        return self.request.dataset_id

    def covers_file(self, file_id: object) -> bool:
        return request_files(self.request).filter(pk=str(file_id)).exists()


def _looks_like_jws(token: bytes) -> bool:
    return token.count(b".") == 2


class VisaAuthentication(BaseAuthentication):
    """Bearer visas; any other bearer token is left to the token authentications."""

    def authenticate(self, request: Request) -> tuple[User, VisaScope] | None:
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"bearer" or not _looks_like_jws(parts[1]):
            return None
        # A visa that fails its checks (not ours, altered, expired) is no credential: 401
        # with a Bearer challenge (RFC 6750 §3.1 invalid_token; htsget's
        # InvalidAuthentication). One of ours whose grant no longer stands: VisaGrantEnded
        # (403), the holder identified and refused.
        try:
            granted = visa_verify(parts[1].decode("ascii", "replace"))
        except VisaGrantEnded:
            raise
        except VisaRefused as exc:
            raise AuthenticationFailed(str(exc)) from exc
        researcher = granted.researcher
        if not researcher.is_active:
            raise AuthenticationFailed("This account is disabled.")
        return researcher, VisaScope(granted)

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


def visa_scope(request: Request) -> VisaScope | None:
    """The visa the request was authorized by, if any."""
    return request.auth if isinstance(request.auth, VisaScope) else None
