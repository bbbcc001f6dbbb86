"""The navigation bar, by role: each role sees the places it can act in.

Entries appear as later issues add their pages; an entry names a URL that exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from marketplace.models import Role, User


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str


def nav_items(user: User | None) -> list[NavItem]:
    items = [NavItem("Home", reverse("web:home"))]
    if user is None:
        return items
    if user.role == Role.DONOR:
        items.append(NavItem("My files", reverse("web:files")))
    if user.role == Role.ADMIN:
        items.append(NavItem("Admin", reverse("admin:index")))
    return items
