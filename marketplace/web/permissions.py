"""Role checks for web pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from marketplace.models import Role
from marketplace.web.twofactor import needs_second_factor

View = Callable[..., HttpResponse]


def role_required(*roles: Role) -> Callable[[View], View]:
    """Log in first (redirect), pass the second factor if staff (redirect), then 403 for
    a role that may not see the page."""

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if needs_second_factor(request.user):
                query = urlencode({"next": request.get_full_path()})
                return redirect(f"{reverse('web:second-factor')}?{query}")
            if getattr(request.user, "role", None) not in roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def committee_required(view: View) -> View:
    """Like `role_required` for the committee's pages: reviewers and admins, and any account
    that sits on a data access committee (API.md "Committees"); 403 for others. Which
    requests each may see is the selectors' business."""
    from marketplace.selectors.committees import is_committee_member

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if needs_second_factor(request.user):
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('web:second-factor')}?{query}")
        staff = getattr(request.user, "role", None) in (Role.REVIEWER, Role.ADMIN)
        if not staff and not is_committee_member(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped
