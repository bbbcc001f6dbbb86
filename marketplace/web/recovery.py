"""Staff make their second factor's recovery codes here; the codes show once."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from marketplace.models import Role, User
from marketplace.services.recovery_codes import recovery_codes_left, recovery_codes_make
from marketplace.web.permissions import role_required


@never_cache  # the codes must not stay in any cache
@role_required(Role.REVIEWER, Role.ADMIN)
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    codes = recovery_codes_make(user=user) if request.method == "POST" else None
    return render(
        request,
        "registration/recovery_codes.html",
        {"codes": codes, "left": recovery_codes_left(user=user)},
    )
