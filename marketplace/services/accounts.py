"""Account operations shared by the REST API and the web UI."""

from __future__ import annotations

from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from core.errors import DomainError, ValidationError
from genomics import c4gh
from genomics.services.recipient_keys import recipient_key_register
from marketplace.models import Role, User
from marketplace.models.users import SELF_SERVICE_ROLES


class InvalidCredentials(ValidationError):
    code = "invalid_credentials"


class LockedOut(DomainError):
    status = 429
    code = "throttled"


def user_register(*, username: str, password: str, email: str, role: str) -> User:
    """Create a donor or researcher account.

    Staff roles are never self-service: reviewers and admins are made by an admin.
    Password rules are Django's validators (length, common, numeric, similar to name).
    """
    if role not in SELF_SERVICE_ROLES:
        raise ValidationError(
            "Choose the donor or researcher role.",
            fields={"role": ["Must be 'donor' or 'researcher'."]},
        )
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError(
            "That username is taken.", fields={"username": ["That username is taken."]}
        )
    candidate = User(username=username, email=email, role=Role(role))
    try:
        password_validation.validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise ValidationError(
            "The password is too weak.", fields={"password": list(exc.messages)}
        ) from exc
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise ValidationError(
            "That username is taken.", fields={"username": ["That username is taken."]}
        ) from exc
    return candidate


def user_authenticate(*, request: HttpRequest, username: str, password: str) -> User:
    """Check a password through Django's backends so django-axes counts failures and
    refuses locked-out username+address pairs before the password is looked at."""
    user = authenticate(request=request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):
        raise LockedOut("Too many failed logins. Try again later.")
    if user is None or not isinstance(user, User):
        raise InvalidCredentials("Wrong username or password.")
    if not user.is_active:
        raise InvalidCredentials("This account is deactivated.")
    return user


def token_issue(*, user: User) -> str:
    """The API token of a user, created on first login."""
    token, _ = Token.objects.get_or_create(user=user)
    return str(token.key)


def user_set_role(*, user: User, role: Role) -> User:
    """Change a role (admin action); staff flags follow in `User.save`."""
    user.role = role
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    return user


def user_set_crypt4gh_key(*, user: User, public_key: str) -> User:
    """Register the key grants will be encrypted to, in any format of README "Key formats"
    (`crypt4gh-keygen`'s .pub text, base64 of the 32 raw bytes, an `ssh-ed25519` line, an
    OpenSSL PUBLIC KEY block). Grants made earlier keep the key they were made for.

    Raises ValidationError (field `public_key`) saying what was wrong and what to give.
    """
    try:
        info = recipient_key_register(text=public_key)
    except c4gh.InvalidKey as exc:
        raise ValidationError(str(exc), fields={"public_key": [str(exc)]}) from exc
    user.crypt4gh_public_key = info.key
    user.save(update_fields=["crypt4gh_public_key"])
    return user


def user_identity_update(*, user: User, public_name: str, institution: str) -> User:
    """Set the name and institution others see: on listings (the public name) and in a
    donor's accounting of disclosures (both; issue 19 §5). Control characters are refused."""
    fields: dict[str, list[str]] = {}
    for name, value, limit in (
        ("public_name", public_name, 120),
        ("institution", institution, 200),
    ):
        if len(value) > limit:
            fields[name] = [f"At most {limit} characters."]
        elif any(ord(c) < 32 for c in value):
            fields[name] = ["No control characters."]
    if fields:
        raise ValidationError("Check the name and institution.", fields=fields)
    user.public_name, user.institution = public_name.strip(), institution.strip()
    user.save(update_fields=["public_name", "institution"])
    return user
