"""Who may download, and the audit entry for every download."""

from __future__ import annotations

from uuid import UUID

from django.utils import timezone

from core.errors import NotFound, PermissionDenied
from genomics.models import Grant
from marketplace.models import AccessRequest, User
from marketplace.models.lifecycle import state_in_words
from marketplace.selectors.scope import request_files, request_scope
from marketplace.services.audit import audit_append

LIVE = (AccessRequest.State.GRANTED, AccessRequest.State.SETTLED)


def request_download_grant(
    *, researcher: User, request_id: UUID | str, file_id: UUID | str, byte_range: str
) -> Grant:
    """The grant for one file of a live request of `researcher`, after auditing the access.

    Another researcher's request or a file outside the dataset answers 404; a request that
    is not (or no longer) granted answers 403 with the reason.
    """
    request = (
        AccessRequest.objects.select_related("dataset", "tier")
        .filter(pk=request_id, researcher=researcher)
        .first()
    )
    # A tier's grantee reaches its region objects only; the full files answer 404.
    if request is None or not request_files(request).filter(pk=file_id).exists():
        raise NotFound("No such file in your requests.")
    if request.state not in LIVE:
        raise PermissionDenied(
            f"This request is {state_in_words(request.state)}; downloads need a live grant."
        )
    if request.expires_at is not None and request.expires_at <= timezone.now():
        raise PermissionDenied("The access period is over.")
    key = bytes(researcher.crypt4gh_public_key or b"")
    grant = (
        Grant.objects.select_related("file")
        .filter(file_id=UUID(str(file_id)), recipient_public_key=key)
        .first()
    )
    if grant is None:
        raise PermissionDenied("No grant exists for your current Crypt4GH key.")
    audit_append(
        action="request.download",
        actor=researcher,
        object_type="access_request",
        object_id=request.pk,
        data={"file": str(file_id), "range": byte_range or "all", "scope": request_scope(request)},
    )
    return grant
