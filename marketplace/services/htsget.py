"""htsget tickets for granted researchers (marketplace/ga4gh/htsget.py), and the signed,
short-lived URLs of the encrypted segments a ticket lists.

A ticket is audited (one entry per ticket: who, which file, which regions). Its URLs carry
a token in their `headers` (`Authorization: Bearer <token>`, htsget 1.3 "Response": the
client must send a URL's headers with it): signed with Django's TimestampSigner (HMAC under
SECRET_KEY), naming the researcher, the request, the file and the payload byte range, valid
HTSGET_URL_TTL_S. What it serves is encrypted segments, which only the header of the same
ticket (for the researcher's key) opens; redeeming re-checks that the grant is still live.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils import timezone

from core.errors import PermissionDenied
from genomics.models import GenomicFile
from genomics.services.tickets import TicketParts
from genomics.ticketer import Region, ticket_request
from marketplace.models import AccessRequest, User
from marketplace.models.lifecycle import LIVE
from marketplace.selectors.drs import GrantedFile
from marketplace.selectors.scope import request_files
from marketplace.services.audit import audit_append

SALT = "marketplace.htsget.blocks"
URL_EXPIRED = "This htsget URL has expired; ask for a new ticket."
URL_INVALID = "This htsget URL is not valid."


@dataclass(frozen=True)
class BlockRange:
    """What a redeemed block token allows: payload bytes [start, end) of `file`."""

    file: GenomicFile
    start: int
    end: int


def htsget_ticket_create(
    *,
    researcher: User,
    granted: GrantedFile,
    regions: list[Region] | None,
    header_only: bool,
) -> tuple[TicketParts, list[str]]:
    """The ticket's parts from the worker's ticketer and one signed token per payload
    range; audited. Raises PermissionDenied without a registered Crypt4GH key, and what
    `ticket_request` raises (TicketRefused, ServiceUnavailable)."""
    key = bytes(researcher.crypt4gh_public_key or b"")
    if len(key) != 32:
        raise PermissionDenied("Register your Crypt4GH public key first (/api/v1/me/crypt4gh-key).")
    parts = ticket_request(
        file_id=str(granted.file.pk), recipient_public=key, regions=regions, header_only=header_only
    )
    audit_append(
        action="request.htsget",
        actor=researcher,
        object_type="access_request",
        object_id=granted.request.pk,
        data={
            "file": str(granted.file.pk),
            "regions": [list(r) for r in regions] if regions else "all",
            "class": "header" if header_only else "body",
            "bytes": sum(end - start for start, end in parts.plaintext_ranges),
        },
    )
    tokens = [
        signing.dumps(
            {
                "researcher": str(researcher.pk),
                "request": str(granted.request.pk),
                "file": str(granted.file.pk),
                "range": [start, end],
            },
            salt=SALT,
        )
        for start, end in parts.payload_ranges
    ]
    return parts, tokens


def htsget_block_redeem(*, token: str, file_id: str) -> BlockRange:
    """The payload range a ticket URL's token allows, after checking the grant still lives.

    Raises PermissionDenied for an expired, forged or altered token, a token of another
    file, or a grant that is no longer live."""
    try:
        claims = signing.loads(token, salt=SALT, max_age=settings.HTSGET_URL_TTL_S)
    except signing.SignatureExpired:
        raise PermissionDenied(URL_EXPIRED) from None
    except signing.BadSignature:
        raise PermissionDenied(URL_INVALID) from None
    if claims.get("file") != file_id:
        raise PermissionDenied(URL_INVALID)
    request = (
        AccessRequest.objects.filter(
            pk=claims["request"], researcher_id=claims["researcher"], researcher__is_active=True
        )
        .select_related("dataset")
        .first()
    )
    if request is None or request.state not in LIVE:
        raise PermissionDenied("The grant of this ticket is no longer live.")
    if request.expires_at is not None and request.expires_at <= timezone.now():
        raise PermissionDenied("The access period is over.")
    # What the request covers (a tier's region objects only: README "Selling regions").
    file = request_files(request).filter(pk=file_id).first()
    if file is None:
        raise PermissionDenied(URL_INVALID)
    start, end = claims["range"]
    return BlockRange(file=file, start=int(start), end=int(end))
