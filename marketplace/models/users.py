"""Accounts. The user model is custom from the first migration so roles and keys can live
on it without a later, painful swap."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models


class Role(models.TextChoices):
    DONOR = "donor", "Donor"
    RESEARCHER = "researcher", "Researcher"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


STAFF_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})
SELF_SERVICE_ROLES = frozenset({Role.DONOR, Role.RESEARCHER})


class AccountManager(UserManager["User"]):
    def create_superuser(
        self,
        username: str,
        email: str | None = None,
        password: str | None = None,
        **extra_fields: Any,
    ) -> User:
        extra_fields.setdefault("role", Role.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):  # type: ignore[django-manager-missing]  # recovery.py
    """A person with one role. Reviewers and admins are staff; admins are superusers.

    Ids are random UUIDs so a foreign id in a URL reveals nothing and cannot be guessed.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.RESEARCHER)
    # The researcher's X25519 public key (32 bytes): grants are encrypted to it.
    crypt4gh_public_key = models.BinaryField(max_length=32, null=True, blank=True)
    public_name = models.CharField(
        max_length=120,
        blank=True,
        help_text="Shown on a donor's listings instead of the username.",
    )
    # Shown with the public name in a donor's accounting of disclosures (issue 19 §5).
    institution = models.CharField(max_length=200, blank=True)

    objects: ClassVar[AccountManager] = AccountManager()

    class Meta:
        db_table = "accounts_user"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=[choice.value for choice in Role]),
                name="user_role_valid",
            ),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Staff status follows the role so the two can never disagree.
        self.is_staff = self.role in STAFF_ROLES
        self.is_superuser = self.role == Role.ADMIN
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        return self.public_name or self.username

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles
