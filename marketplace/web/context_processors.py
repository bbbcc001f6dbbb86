"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest

from ledger.selectors.wallets import wallet_address_of
from marketplace.models import User
from marketplace.selectors.notifications import notification_unread_count
from marketplace.web.navigation import nav_items


def navigation(request: HttpRequest) -> dict[str, object]:
    """The menu for the visitor's role and, once signed in, their linked wallet (or None):
    the header shows it on every page, so a donor sees at once that payments have nowhere
    to go (issue 16 §1)."""
    user = getattr(request, "user", None)
    signed_in = user if isinstance(user, User) else None
    return {
        "nav_items": nav_items(signed_in),
        "header_wallet": wallet_address_of(user=signed_in) if signed_in else None,
        "unread_count": notification_unread_count(user=signed_in) if signed_in else 0,
    }
