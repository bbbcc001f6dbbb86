"""Who may read a request's attachments."""

from __future__ import annotations

from marketplace.models import AccessRequest, RequestAttachment, Role, User


def may_open_attachments(viewer: User, request: AccessRequest) -> bool:
    """The committee that decides the request (issue 19 §3: "visible only to the DAC"):
    today the reviewers and admins; the donor and other researchers never, and the
    researcher who attached them only lists them."""
    return viewer.role in (Role.REVIEWER, Role.ADMIN)


def attachments_of(*, viewer: User, request: AccessRequest) -> list[RequestAttachment]:
    """The attachments the viewer may list: the request's researcher (their own) and the
    committee; nobody else (an empty list)."""
    if viewer.pk == request.researcher_id or may_open_attachments(viewer, request):
        return list(request.attachments.select_related("file"))
    return []
