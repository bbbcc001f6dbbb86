"""Password reset by email (issue 16 §11): Django's auth views in the site's style.

No user enumeration: the form answers the same "check your inbox" page for any address,
known or not (Django's PasswordResetForm mails only active accounts with a usable
password). Throttled per client address and per address asked for, counted before the
lookup so the answer cannot tell an existing account from a missing one. The link in the
mail is built on SITE_URL, never on the request's Host header.
"""

from __future__ import annotations

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpResponse
from django.urls import reverse_lazy

from core.ratelimit import rate_limit_hit

THROTTLED = (
    "Too many reset requests from here or for this address: wait an hour, then ask again. "
    "If the mail does not arrive, check your spam folder."
)


# Templates under registration/reset/: django.contrib.admin, listed before us, ships its own
# registration/password_reset_*.html, which would win the lookup.
class PasswordResetView(auth_views.PasswordResetView):
    template_name = "registration/reset/form.html"
    email_template_name = "registration/reset/email.txt"
    subject_template_name = "registration/reset/subject.txt"
    success_url = reverse_lazy("web:password-reset-done")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        rate = settings.THROTTLE_PASSWORD_RESET
        address = get_client_ip_address(self.request) or "unknown"
        email = form.cleaned_data["email"].strip().lower()
        # Both counters move on every request, so neither can be probed alone.
        by_address = rate_limit_hit(scope="password-reset-ip", key=address, rate=rate)
        by_email = rate_limit_hit(scope="password-reset-email", key=email, rate=rate)
        if not (by_address and by_email):
            form.add_error(None, THROTTLED)
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        self.extra_email_context = {"site_url": settings.SITE_URL}
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/reset/sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/reset/confirm.html"
    success_url = reverse_lazy("web:password-reset-complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/reset/complete.html"
