"""Figures shown on public pages."""

from __future__ import annotations

from marketplace.models import AccessRequest, Dataset, Role, User


def site_counts() -> dict[str, int]:
    """Live counts for the home page."""
    return {
        "donors": User.objects.filter(role=Role.DONOR, is_active=True).count(),
        "researchers": User.objects.filter(role=Role.RESEARCHER, is_active=True).count(),
        "datasets": Dataset.objects.filter(state=Dataset.State.LISTED).count(),
        "grants": AccessRequest.objects.filter(
            state__in=(AccessRequest.State.GRANTED, AccessRequest.State.SETTLED)
        ).count(),
    }
