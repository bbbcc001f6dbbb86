"""A second factor for staff (reviewers and admins): TOTP through django-otp.

After the password, a staff member without a confirmed authenticator sets one up (the
secret as text and as a QR code), and every later sign-in asks for its current code.
Staff pages and the Django admin refuse a session that has not passed this step.
"""

from __future__ import annotations

import base64
from functools import update_wrapper
from io import BytesIO
from typing import Any
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from marketplace.models import User
from marketplace.services.recovery_codes import recovery_code_use
from marketplace.web.forms import RecoveryCodeForm, TokenForm

DEVICE_NAME = "Authenticator app"


def needs_second_factor(user: object) -> bool:
    """Staff, and members of a data access committee whatever their role (API.md
    "Committees"), whose session has not passed the second factor yet."""
    from marketplace.selectors.committees import is_committee_member

    return bool(
        isinstance(user, User)
        and user.is_authenticated
        and not getattr(user, "is_verified", lambda: False)()
        and (user.is_staff or is_committee_member(user))
    )


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    return svg[svg.index("<svg") :]  # inline in HTML: no XML declaration


@require_http_methods(["GET", "POST"])
def second_factor(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        return redirect("web:login")
    target = request.GET.get("next") or request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    if not needs_second_factor(user):
        return redirect(target)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    setting_up = device is None
    if device is None:
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, confirmed=False, defaults={"name": DEVICE_NAME}
        )
    using_code = request.method == "POST" and "recovery_code" in request.POST
    recovery = RecoveryCodeForm(request.POST if using_code else None)
    if using_code and recovery.is_valid():
        # The authenticator is lost: a recovery code stands in for it once (audited).
        recovered = recovery_code_use(user=user, code=recovery.cleaned_data["recovery_code"])
        if recovered is not None:
            otp_login(request, recovered)
            messages.success(
                request,
                "Recovery code accepted; it cannot be used again. Make new codes on your "
                "profile when you are down to a few.",
            )
            return redirect(target)
        recovery.add_error("recovery_code", "That recovery code is not right, or was used already.")
    form = TokenForm(request.POST if request.method == "POST" and not using_code else None)
    if request.method == "POST" and not using_code and form.is_valid():
        allowed, _ = device.verify_is_allowed()
        if not allowed:  # django-otp slows guessing down after each wrong code
            form.add_error("token", "Too many wrong codes: wait a few seconds, then try again.")
        elif device.verify_token(form.cleaned_data["token"]):
            if setting_up:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            otp_login(request, device)
            messages.success(request, "Second factor checked.")
            return redirect(target)
        else:
            form.add_error("token", "That code is not right (or has expired). Try the current one.")
    context: dict[str, object] = {
        "form": form,
        "recovery": recovery,
        "setting_up": setting_up,
        "next": target,
    }
    if setting_up:
        context["secret"] = base64.b32encode(device.bin_key).decode()
        context["qr_svg"] = _qr_svg(device.config_url)
    return render(
        request,
        "registration/second_factor.html",
        context,
        status=400 if form.errors or recovery.errors else 200,
    )


def _not_staff(request: HttpRequest) -> HttpResponse | None:
    """A plain 403 for a signed-in account that is not staff: the second factor cannot
    help it, and sending it there and back looped forever (issue 16 §6)."""
    user = request.user
    if user.is_authenticated and not (user.is_active and user.is_staff):
        return render(
            request,
            "errors/403.html",
            {"message": "The admin is for staff only; your account is not staff."},
            status=403,
        )
    return None


class VerifiedAdminSite(AdminSite):
    """The Django admin, for staff who passed the second factor; its login sends people
    through the site's own login and second-factor pages."""

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and not needs_second_factor(request.user)

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        wrapped = super().admin_view(view, cacheable)

        def refuse_non_staff(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refused = _not_staff(request)
            return refused if refused is not None else wrapped(request, *args, **kwargs)

        return update_wrapper(refuse_non_staff, wrapped)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        refused = _not_staff(request)
        if refused is not None:
            return refused
        target = request.GET.get("next") or reverse("admin:index")
        page = "web:second-factor" if request.user.is_authenticated else "web:login"
        return redirect(f"{reverse(page)}?{urlencode({'next': target})}")
