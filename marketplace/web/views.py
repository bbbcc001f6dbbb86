"""Pages of the web UI: thin views over the same services as the REST API."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from core.errors import ValidationError
from marketplace.models import User
from marketplace.selectors.site import site_counts
from marketplace.services.accounts import user_register
from marketplace.web.forms import LoginForm, RegisterForm
from marketplace.web.navigation import workspace_url


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "marketplace/home.html", {"counts": site_counts()})


class LoginView(auth_views.LoginView):
    """Django's login (session rotated on login), through django-axes' lockout."""

    form_class = LoginForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        """Without a `next`, each role lands on its workspace (issue 16 §11)."""
        user = self.request.user
        return workspace_url(user) if isinstance(user, User) else super().get_default_redirect_url()

    def get_success_url(self) -> str:
        """Staff go through the second factor on their way to where they were going."""
        target = super().get_success_url()
        if getattr(self.request.user, "is_staff", False):
            return f"{reverse('web:second-factor')}?{urlencode({'next': target})}"
        return target


class LogoutView(auth_views.LogoutView):
    """POST only (Django 5): a link cannot log anyone out behind their back."""


@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("web:home")
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_register(**form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.fields.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, f"Welcome, {user.username}. Your {user.role} account is ready."
            )
            return redirect(workspace_url(user))
    return render(
        request, "registration/register.html", {"form": form}, status=400 if form.errors else 200
    )
