"""Forms of the web UI; they validate shape, services decide."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from marketplace.models import Role


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class RegisterForm(forms.Form):
    username = forms.RegexField(
        regex=r"^[\w.@+-]+\Z",
        min_length=3,
        max_length=150,
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        strip=False,
        min_length=1,
        max_length=128,
        help_text="At least 10 characters; not a common password, not only digits.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    role = forms.ChoiceField(
        choices=[
            (Role.DONOR.value, "Donor: I share genomic data"),
            (Role.RESEARCHER.value, "Researcher: I request access to data"),
        ],
        widget=forms.RadioSelect,
    )
