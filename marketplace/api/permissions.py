"""Role permissions for API views."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from core.api.auth import request_user
from core.errors import PermissionDenied
from marketplace.models import Role, User


def authenticated_user(request: Request) -> User:
    """The request's user as the marketplace's model; views call this behind IsAuthenticated."""
    user = request_user(request)
    if not isinstance(user, User):
        raise PermissionDenied("Log in first.")
    return user


class HasRole(BasePermission):
    """Allow authenticated users whose role is one of `roles`: `HasRole.of(Role.DONOR)`."""

    roles: frozenset[str] = frozenset()
    message = "Your role may not do this."

    @classmethod
    def of(cls, *roles: Role) -> type[HasRole]:
        return type(
            f"Has{''.join(r.value.title() for r in roles)}Role", (cls,), {"roles": frozenset(roles)}
        )

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "role", None) in self.roles)


IsDonor = HasRole.of(Role.DONOR)
IsResearcher = HasRole.of(Role.RESEARCHER)
IsReviewer = HasRole.of(Role.REVIEWER, Role.ADMIN)
IsAdmin = HasRole.of(Role.ADMIN)


class IsCommitteeMember(BasePermission):
    """Callers who sit on some data access committee (issue 19 §1): anyone else can never
    review, so 403; which requests a member may review is the service's business (404 for a
    request of another committee, as for any object the caller cannot see)."""

    message = "Only members of a data access committee review requests."

    def has_permission(self, request: Request, view: APIView) -> bool:
        from marketplace.selectors.committees import is_committee_member

        return is_committee_member(request.user)
