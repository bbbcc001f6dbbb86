"""Admins moderate listings (issue 16 §6): delisting a dataset from its page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from core.errors import DomainError
from marketplace.models import Role, User
from marketplace.selectors.datasets import dataset_get
from marketplace.services.datasets import dataset_delist
from marketplace.web.catalogue import dataset_page
from marketplace.web.forms import DelistForm
from marketplace.web.permissions import role_required


@role_required(Role.ADMIN)
@require_POST
def dataset_delist_view(request: HttpRequest, dataset_id: str) -> HttpResponse:
    admin = request.user
    assert isinstance(admin, User)
    dataset = dataset_get(dataset_id=dataset_id, viewer=admin)
    form = DelistForm(request.POST)
    if form.is_valid():
        try:
            dataset_delist(dataset=dataset, admin=admin, reason=form.cleaned_data["reason"])
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                "Delisted: it left the catalogue. Waiting requests are closed (the worker "
                "cancels any voucher on chain); paid ones are still delivered and settled. "
                "The donor and the researchers concerned are told.",
            )
        return redirect("web:dataset", dataset_id=dataset.pk)
    return dataset_page(request, str(dataset.pk), delist_form=form, status=400)
