"""Demo data for `make run`: a few accounts to click through the product with.

Idempotent: running it again changes nothing. Never run against production data.
"""

from __future__ import annotations

from django.db import transaction

from marketplace.models import Role, User

DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - demo accounts, printed by make run
DEMO_ACCOUNTS = (
    ("demo-donor", Role.DONOR, "Demo Biobank"),
    ("demo-researcher", Role.RESEARCHER, "Dr Demo Researcher"),
    ("demo-reviewer", Role.REVIEWER, "Demo Committee Member"),
)


def admin_ensure(*, username: str, password: str, email: str) -> tuple[User, bool]:
    """Create the first admin if missing; an existing one keeps the password it has."""
    with transaction.atomic():
        user = User.objects.filter(username=username).first()
        if user is not None:
            return user, False
        return User.objects.create_superuser(username, email, password), True


def demo_seed() -> list[User]:
    users = []
    with transaction.atomic():
        for username, role, public_name in DEMO_ACCOUNTS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "role": role,
                    "public_name": public_name,
                    "email": f"{username}@example.org",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            users.append(user)
    return users
