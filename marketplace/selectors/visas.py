"""Reads of GA4GH Passport visas: the researcher's passport, our JWKS, and the check that
a visa of ours still stands (README "Passports"; Passport v1.2 "Visa Format")."""

from __future__ import annotations

import uuid
from datetime import datetime

import jwt
from django.conf import settings
from django.utils import timezone

from core.errors import PermissionDenied
from marketplace.models import AccessRequest, User, Visa, VisaKey
from marketplace.models.lifecycle import LIVE
from marketplace.services.visas import ALGORITHM, VISA_TYP, VISA_TYPE, grant_url


class VisaRefused(PermissionDenied):
    """A visa that is not ours, was altered, has expired, or whose grant no longer stands."""


class VisaGrantEnded(VisaRefused):
    """A valid visa of ours whose grant was revoked or has ended: the holder is who the
    visa says, and is refused (403), where a visa that fails its checks is no credential
    at all (401 at authentication)."""


def visa_jwks() -> dict[str, list[dict[str, str]]]:
    """Our JWKS (RFC 7517 §5): {"keys": [public JWK with kid, alg, use]}, every visa key
    the worker has used (a retired key stays until the last visa it signed has expired)."""
    return {"keys": [row.public_jwk for row in VisaKey.objects.order_by("created_at")]}


def passport_visas(*, user: User, now: datetime | None = None) -> list[str]:
    """The user's current visas, as the `ga4gh_passport_v1` list of a Passport v1.2
    userinfo answer: the newest unexpired visa of each of their live grants. A revoked or
    expired grant's visas are left out as soon as its state changes, whatever their `exp`."""
    moment = now or timezone.now()
    rows = (
        Visa.objects.filter(
            request__researcher=user,
            request__state__in=LIVE,
            request__expires_at__gt=moment,
            expires_at__gt=moment,
        )
        .exclude(token="")
        .order_by("-issued_at")
        .values_list("request_id", "token")
    )
    newest: dict[uuid.UUID, str] = {}
    for request_id, token in rows:
        newest.setdefault(request_id, token)
    return list(newest.values())


def visa_verify(token: str) -> AccessRequest:
    """The live grant a visa of ours stands for, for endpoints (htsget, DRS) that accept a
    visa as authorization. Checks, in order: a key we publish (`kid`), the ES256 signature,
    `typ`, `iss`, `exp`/`iat` and the required claims (Passport v1.2 "Visa Format"), the
    visa object (our `source`, `ControlledAccessGrants`, no `conditions`), then the grant
    itself: its request is still granted or settled and not past its end, for the visa's
    `sub` and `value`. So a revoked grant's visa is refused here before its `exp`.

    Raises VisaGrantEnded (403) for a revoked or ended grant, VisaRefused with a generic
    reason otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise VisaRefused("This is not a visa.") from exc
    kid = header.get("kid")
    row = VisaKey.objects.filter(kid=kid).first() if isinstance(kid, str) else None
    if row is None or header.get("typ") != VISA_TYP:
        raise VisaRefused("This visa is not one of ours.")
    try:
        claims = jwt.decode(
            token,
            key=jwt.PyJWK.from_dict(row.public_jwk),
            algorithms=[ALGORITHM],
            issuer=settings.SITE_URL,
            options={"require": ["iss", "sub", "iat", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise VisaRefused("This visa has expired.") from exc
    except jwt.PyJWTError as exc:
        raise VisaRefused("This visa is not one of ours.") from exc
    visa = claims.get("ga4gh_visa_v1")
    if (
        not isinstance(visa, dict)
        or visa.get("type") != VISA_TYPE
        or visa.get("source") != settings.SITE_URL
        or visa.get("conditions")
    ):
        raise VisaRefused("This visa is not one of ours.")
    try:
        jti = uuid.UUID(str(claims["jti"]))
    except ValueError as exc:
        raise VisaRefused("This visa is not one of ours.") from exc
    request = (
        AccessRequest.objects.filter(visas__id=jti).select_related("dataset", "researcher").first()
    )
    if (
        request is None
        or request.state not in LIVE
        or request.expires_at is None
        or request.expires_at <= timezone.now()
    ):
        raise VisaGrantEnded("The grant of this visa was revoked or has ended.")
    # The row only maps jti to a request: the signed claims must name the same grant.
    if str(request.researcher_id) != claims["sub"] or grant_url(request) != visa.get("value"):
        raise VisaRefused("This visa is not one of ours.")
    return request
