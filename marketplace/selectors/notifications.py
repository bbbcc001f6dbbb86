"""A user's notifications, newest first (the in-app inbox and its unread count)."""

from __future__ import annotations

from django.db.models import QuerySet

from marketplace.models import Notification, User


def notification_list(*, user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).select_related("request__dataset")


def notification_unread_count(*, user: User) -> int:
    """Served by the (user, read_at) index."""
    return Notification.objects.filter(user=user, read_at=None).count()
