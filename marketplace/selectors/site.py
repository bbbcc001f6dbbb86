"""Figures shown on public pages."""

from __future__ import annotations

from marketplace.models import Role, User


def site_counts() -> dict[str, int]:
    """Live counts for the home page; datasets and requests join as those issues land."""
    return {
        "donors": User.objects.filter(role=Role.DONOR, is_active=True).count(),
        "researchers": User.objects.filter(role=Role.RESEARCHER, is_active=True).count(),
    }
