"""Access-request reads, filtered by who is asking (RELIABILITY.md item 2: list views
filter in the selector, never only in get_object)."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Q, QuerySet

from core.errors import NotFound
from marketplace.models import AccessRequest, AuditEntry, Role, User


def request_list(*, viewer: User) -> QuerySet[AccessRequest]:
    requests = AccessRequest.objects.select_related("dataset", "dataset__donor", "researcher")
    if viewer.role in (Role.REVIEWER, Role.ADMIN):
        return requests
    return requests.filter(Q(researcher=viewer) | Q(dataset__donor=viewer))


def request_get(*, viewer: User, request_id: UUID | str) -> AccessRequest:
    """A request the viewer may see; any other id answers 404, as if it did not exist."""
    found = request_list(viewer=viewer).filter(pk=request_id).first()
    if found is None:
        raise NotFound("No such request.")
    return found


def request_timeline(*, request: AccessRequest) -> list[dict[str, object]]:
    """What happened to a request, from the audit log."""
    entries = AuditEntry.objects.filter(object_type="access_request", object_id=str(request.pk))
    return [
        {
            "at": entry.created_at,
            "action": entry.action.removeprefix("request."),
            "state": entry.data.get("state"),
            "by": entry.actor_label or "system",
        }
        for entry in entries.order_by("seq")
    ]
