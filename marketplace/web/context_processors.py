"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest

from marketplace.models import User
from marketplace.web.navigation import nav_items


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    return {"nav_items": nav_items(user if isinstance(user, User) else None)}
