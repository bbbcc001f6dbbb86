"""Who may read a request's attachments."""

from __future__ import annotations

from marketplace.models import AccessRequest, RequestAttachment, User
from marketplace.selectors.committees import membership_role


def may_open_attachments(viewer: User, request: AccessRequest) -> bool:
    """The members of the committee that owns the request's dataset (issue 19 §3:
    "visible only to the DAC"); not the donor, not other researchers, not admins who are
    not members, and the researcher who attached them only lists them."""
    return membership_role(user=viewer, dac_id=request.dataset.dac_id) is not None


def attachments_of(*, viewer: User, request: AccessRequest) -> list[RequestAttachment]:
    """The attachments the viewer may list: the request's researcher (their own) and the
    committee; nobody else (an empty list)."""
    if viewer.pk == request.researcher_id or may_open_attachments(viewer, request):
        return list(request.attachments.select_related("file"))
    return []
