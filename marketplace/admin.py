"""Django admin: admins manage accounts; staff read the marketplace's records.

Datasets, access requests and audit entries are read-only here (issue 16 §6): every
change to them goes through a service that audits it (delisting and closing are actions
on their web pages), so the admin must not be a side door. What is shown holds no
secret: no voucher MAC, no TOTP key (OTP_ADMIN_HIDE_SENSITIVE_DATA), no recovery code.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from marketplace.models import AccessRequest, AuditEntry, Dataset, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "role", "is_active", "date_joined")
    list_filter = ("role", "is_active")
    search_fields = ("username", "email", "public_name")
    ordering = ("username",)
    # Staff and superuser flags follow the role (User.save), so only the role is editable.
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("email", "public_name", "role")}),
        ("Status", {"fields": ("is_active", "last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "role", "password1", "password2"),
            },
        ),
    )
    readonly_fields = ("last_login", "date_joined")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff may look, nobody may add, change or delete through the admin."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ("title", "donor", "state", "price", "review", "created_at")
    list_select_related = ("donor",)
    list_filter = ("state", "review")
    search_fields = ("title", "donor__username")
    fields = (
        "id",
        "title",
        "description",
        "donor",
        "state",
        "delisted_at",
        "delist_reason",
        "withdrawn_at",
        "price",
        "access_days",
        "review",
        "duo_codes",
        "metadata",
        "record_hash",
        "anchor_tx",
        "anchored_at",
        "created_at",
    )


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "dataset", "researcher", "state", "flagged", "created_at")
    list_select_related = ("dataset", "researcher")
    list_filter = ("state",)
    search_fields = ("id", "dataset__title", "researcher__username", "chain_request_id")
    # Not the voucher's MAC (the worker's integrity check of its own rows).
    fields = (
        "id",
        "dataset",
        "researcher",
        "state",
        "purpose_codes",
        "statement",
        "duo_match",
        "amount",
        "reviewer",
        "decision_reason",
        "flagged",
        "voucher_error",
        "chain_request_id",
        "buyer",
        "payee",
        "voucher_valid_until",
        "paid_tx",
        "deliver_tx",
        "release_tx",
        "granted_at",
        "expires_at",
        "created_at",
        "updated_at",
    )


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "actor_label", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("action", "actor_label", "object_id")
    fields = (
        "seq",
        "created_at",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "data",
        "prev_hash",
        "hash",
    )


def _unregister_side_doors() -> None:
    """Credentials and second factors are made by their owners, never by another account
    through the admin (newcomer finding: an admin could mint any user's API token here,
    unaudited). Groups are not used: roles are."""
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from rest_framework.authtoken.models import TokenProxy

    for model in (TokenProxy, Group, TOTPDevice):
        if admin.site.is_registered(model):
            admin.site.unregister(model)


_unregister_side_doors()
