"""DRS access URLs (GA4GH DRS 1.4, `GET /objects/{object_id}/access/{access_id}`): short-lived,
signed, and bound to the grantee.

An access URL is a capability, as the signed URLs of object stores are: whoever holds it gets
the grantee's download (their grant header + the payload), which only the grantee's Crypt4GH
secret key opens. It names the researcher, the request and the file, and is signed with
Django's `TimestampSigner` (HMAC-SHA256 under SECRET_KEY): a forged or altered URL fails the
signature, an old one fails `max_age`. Redeeming re-checks the grant exactly as the download
route does (a grant revoked or expired after the URL was issued stops it) and audits it.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from core.errors import PermissionDenied
from genomics.models import Grant
from marketplace.models import User
from marketplace.selectors.drs import GrantedFile
from marketplace.services.downloads import request_download_grant

# Separates these signatures from every other use of SECRET_KEY (sessions, password resets).
SALT = "marketplace.drs.access-url"
ACCESS_URL_EXPIRED = "This access URL has expired; ask /access for a new one."
ACCESS_URL_INVALID = "This access URL is not valid."


def drs_access_token_create(*, researcher: User, granted: GrantedFile) -> str:
    """The signed token of an access URL: URL-safe base64 and colons, about 150 characters."""
    claims = {
        "researcher": str(researcher.pk),
        "request": str(granted.request.pk),
        "file": str(granted.file.pk),
    }
    return signing.dumps(claims, salt=SALT)


def drs_access_token_redeem(*, token: str, byte_range: str) -> Grant:
    """The grant that an access URL names, after the download route's checks and audit.

    Raises PermissionDenied for an expired (older than DRS_ACCESS_URL_TTL_S), forged or
    altered token, and whatever `request_download_grant` raises for a grant that is no
    longer live (PermissionDenied) or no longer exists (NotFound).
    """
    try:
        claims = signing.loads(token, salt=SALT, max_age=settings.DRS_ACCESS_URL_TTL_S)
    except signing.SignatureExpired:
        raise PermissionDenied(ACCESS_URL_EXPIRED) from None
    except signing.BadSignature:
        raise PermissionDenied(ACCESS_URL_INVALID) from None
    researcher = User.objects.filter(pk=claims["researcher"], is_active=True).first()
    if researcher is None:
        raise PermissionDenied(ACCESS_URL_INVALID)
    return request_download_grant(
        researcher=researcher,
        request_id=claims["request"],
        file_id=claims["file"],
        byte_range=byte_range,
    )
