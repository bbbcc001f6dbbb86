"""The in-app inbox: the notifications the API already stores, as a page (issue 16 §4)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from marketplace.models import Role, User
from marketplace.selectors.notifications import notification_list
from marketplace.services.notifications import notifications_mark_read
from marketplace.web.permissions import role_required

EVERY_ROLE = (Role.RESEARCHER, Role.DONOR, Role.REVIEWER, Role.ADMIN)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@role_required(*EVERY_ROLE)
def inbox(request: HttpRequest) -> HttpResponse:
    page = Paginator(notification_list(user=_user(request)), 25).get_page(request.GET.get("page"))
    return render(request, "marketplace/inbox/index.html", {"page": page})


@role_required(*EVERY_ROLE)
@require_POST
def inbox_read(request: HttpRequest) -> HttpResponse:
    marked = notifications_mark_read(user=_user(request))
    messages.success(request, f"{marked} notification{'s' if marked != 1 else ''} marked read.")
    return redirect("web:inbox")
