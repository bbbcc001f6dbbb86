"""A person's profile: the Crypt4GH public key grants are made for, and the wallet they
pay from (linked with Sign-In with Ethereum by the browser wallet, see wallet.js)."""

from __future__ import annotations

import base64

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core.errors import DomainError
from genomics.selectors.recipient_keys import recipient_key_describe
from ledger.selectors.wallets import wallet_address_of
from marketplace.models import Role, User
from marketplace.services.accounts import user_identity_update, user_set_crypt4gh_key
from marketplace.web.errors import form_add_domain_error
from marketplace.web.forms import Crypt4ghKeyForm
from marketplace.web.permissions import role_required


@role_required(Role.RESEARCHER, Role.DONOR, Role.REVIEWER, Role.ADMIN)
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = Crypt4ghKeyForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        text = form.key_text()
        if not text.strip():
            form.add_error("public_key", "Paste the key or choose its .pub file.")
        else:
            try:
                user_set_crypt4gh_key(user=user, public_key=text)
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, "Your Crypt4GH public key is saved.")
                return redirect("web:profile")
    key = bytes(user.crypt4gh_public_key) if user.crypt4gh_public_key else b""
    key_info = recipient_key_describe(public_key=key) if key else None
    return render(
        request,
        "marketplace/profile.html",
        {
            "form": form,
            "key_b64": base64.b64encode(key).decode() if key else "",
            "key_info": key_info,
            "wallet": wallet_address_of(user=user),
        },
        status=400 if form.errors else 200,
    )


@role_required(Role.RESEARCHER, Role.DONOR, Role.REVIEWER, Role.ADMIN)
@require_http_methods(["POST"])
def profile_identity(request: HttpRequest) -> HttpResponse:
    """The public name and institution (shown in donors' access histories)."""
    user = request.user
    assert isinstance(user, User)
    try:
        user_identity_update(
            user=user,
            public_name=request.POST.get("public_name", ""),
            institution=request.POST.get("institution", ""),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Your name and institution are saved.")
    return redirect("web:profile")
