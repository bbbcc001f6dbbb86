"""The navigation bar, by role: each role sees the places it can act in."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from marketplace.models import Role, User


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str


def nav_items(user: User | None) -> list[NavItem]:
    items = [NavItem("Catalogue", reverse("web:catalogue"))]
    if user is None:
        return items
    from marketplace.selectors.committees import is_committee_member

    if user.role in (Role.DONOR, Role.RESEARCHER) and is_committee_member(user):
        items.append(NavItem("Review queue", reverse("web:review")))
    if user.role == Role.DONOR:
        items += [
            NavItem("Dashboard", reverse("web:dashboard")),
            NavItem("My files", reverse("web:files")),
            NavItem("Requests", reverse("web:requests")),
            NavItem("My data", reverse("web:access-history")),
        ]
    elif user.role == Role.RESEARCHER:
        items += [
            NavItem("My requests", reverse("web:requests")),
            NavItem("Profile", reverse("web:profile")),
        ]
    else:  # reviewers and admins
        items += [
            NavItem("Review queue", reverse("web:review")),
            NavItem("Audit log", reverse("web:audit")),
            NavItem("Chain", reverse("web:chain")),
        ]
    if user.role == Role.ADMIN:
        items.append(NavItem("Committees", reverse("web:dacs")))
        items.append(NavItem("Admin", reverse("admin:index")))
    return items


# Where each role works (issue 16 §11): signing in lands there, not on the marketing page.
WORKSPACES = {
    Role.DONOR: "web:dashboard",
    Role.RESEARCHER: "web:requests",
    Role.REVIEWER: "web:review",
    Role.ADMIN: "web:review",
}


def workspace_url(user: User) -> str:
    """The path of the page `user`'s role works from (the home page for an unknown role)."""
    return reverse(WORKSPACES.get(Role(user.role), "web:home") if user.role else "web:home")
