"""Staff admins manage data access committees (issue 19 §1): the list, a new committee,
its policy and its members. Every change goes through an audited service."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import DomainError
from marketplace.models import Role, User
from marketplace.selectors.committees import dac_get, dac_list
from marketplace.services.committees import (
    dac_create,
    dac_member_remove,
    dac_member_set,
    dac_update,
)
from marketplace.web.errors import form_add_domain_error
from marketplace.web.forms import DacForm, DacMemberForm
from marketplace.web.permissions import role_required


def _admin(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def dac_index(request: HttpRequest) -> HttpResponse:
    form = DacForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            made = dac_create(admin=_admin(request), **form.cleaned_data)
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"Committee “{made.name}” made. Add its members.")
            return redirect("web:dac", dac_id=made.pk)
    return render(
        request,
        "marketplace/committees/index.html",
        {"dacs": dac_list(), "form": form},
        status=400 if form.errors else 200,
    )


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def dac_page(request: HttpRequest, dac_id: str) -> HttpResponse:
    """A committee: its policy (POST changes it) and its members."""
    dac = dac_get(dac_id=dac_id)
    initial = {
        "name": dac.name,
        "description": dac.description,
        "votes_needed": dac.votes_needed,
        "chair_decides": dac.chair_decides,
    }
    form = DacForm(request.POST or None, initial=initial)
    form.fields["name"].disabled = True
    if request.method == "POST" and form.is_valid():
        try:
            dac_update(
                admin=_admin(request),
                dac_id=dac.pk,
                description=form.cleaned_data["description"],
                votes_needed=form.cleaned_data["votes_needed"],
                chair_decides=form.cleaned_data["chair_decides"],
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, "The policy is saved.")
            return redirect("web:dac", dac_id=dac.pk)
    return render(
        request,
        "marketplace/committees/detail.html",
        {"dac": dac, "form": form, "member_form": DacMemberForm()},
        status=400 if form.errors else 200,
    )


@role_required(Role.ADMIN)
@require_POST
def dac_member_add(request: HttpRequest, dac_id: str) -> HttpResponse:
    dac = dac_get(dac_id=dac_id)
    form = DacMemberForm(request.POST)
    if form.is_valid():
        user = User.objects.filter(username=form.cleaned_data["username"].strip()).first()
        if user is None:
            messages.error(request, f"No account is named “{form.cleaned_data['username']}”.")
        else:
            try:
                dac_member_set(
                    admin=_admin(request),
                    dac_id=dac.pk,
                    user_id=user.pk,
                    role=form.cleaned_data["role"],
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request, f"{user.username} is {form.cleaned_data['role']} of {dac.name}."
                )
    else:
        messages.error(request, "Give a username and a role.")
    return redirect("web:dac", dac_id=dac.pk)


@role_required(Role.ADMIN)
@require_POST
def dac_member_remove_view(request: HttpRequest, dac_id: str, user_id: str) -> HttpResponse:
    dac = dac_get(dac_id=dac_id)
    dac_member_remove(admin=_admin(request), dac_id=dac.pk, user_id=user_id)
    messages.success(request, "Taken off the committee.")
    return redirect("web:dac", dac_id=dac.pk)
