"""The donor's pages for a dataset's data access agreement and its blocklist."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import DomainError
from marketplace.models import Dataset, DatasetBlock, Role, User
from marketplace.selectors.agreements import agreement_current
from marketplace.selectors.blocklist import dataset_blocks
from marketplace.selectors.datasets import dataset_get
from marketplace.services.agreements import agreement_publish, agreement_remove
from marketplace.services.blocklist import researcher_unblock
from marketplace.web.errors import form_add_domain_error
from marketplace.web.permissions import role_required


class AgreementForm(forms.Form):
    title = forms.CharField(max_length=200, initial="Data access agreement")
    text = forms.CharField(
        max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 14}),
        help_text="Researchers read and accept this exact text when they request access. "
        "Saving a changed text makes a new version; requests already made keep theirs.",
    )


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _owned(request: HttpRequest, dataset_id: str) -> Dataset | None:
    user = _user(request)
    dataset = dataset_get(dataset_id=dataset_id, viewer=user)
    if dataset.donor_id != user.pk and user.role != Role.ADMIN:
        return None
    return dataset


@role_required(Role.DONOR)
@require_http_methods(["GET", "POST"])
def dataset_agreement(request: HttpRequest, dataset_id: str) -> HttpResponse:
    """Publish a new version of the agreement, or remove the requirement."""
    dataset = _owned(request, dataset_id)
    if dataset is None:
        return render(request, "errors/404.html", status=404)
    current = agreement_current(dataset=dataset)
    initial = {"title": current.title, "text": current.text} if current else None
    form = AgreementForm(request.POST or None, initial=initial)
    if request.method == "POST" and request.POST.get("remove"):
        agreement_remove(dataset_id=dataset.pk, actor=_user(request))
        messages.success(request, "New requests need no agreement now.")
        return redirect("web:dataset-agreement", dataset_id=dataset.pk)
    if request.method == "POST" and form.is_valid():
        try:
            published = agreement_publish(
                dataset_id=dataset.pk, actor=_user(request), **form.cleaned_data
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(
                request, f"Version {published.version} is the agreement researchers accept now."
            )
            return redirect("web:dataset-agreement", dataset_id=dataset.pk)
    return render(
        request,
        "marketplace/donor/agreement.html",
        {
            "dataset": dataset,
            "form": form,
            "current": current,
            "versions": dataset.agreements.all(),
        },
        status=400 if form.errors else 200,
    )


@role_required(Role.DONOR, Role.ADMIN)
def dataset_blocklist(request: HttpRequest, dataset_id: str) -> HttpResponse:
    """Researchers blocked from the dataset after a revocation for misuse."""
    dataset = _owned(request, dataset_id)
    if dataset is None:
        return render(request, "errors/404.html", status=404)
    return render(
        request,
        "marketplace/donor/blocklist.html",
        {"dataset": dataset, "blocks": dataset_blocks(dataset=dataset)},
    )


@role_required(Role.DONOR, Role.ADMIN)
@require_POST
def dataset_block_lift(request: HttpRequest, dataset_id: str, block_id: str) -> HttpResponse:
    dataset = _owned(request, dataset_id)
    if dataset is None or not DatasetBlock.objects.filter(pk=block_id, dataset=dataset).exists():
        return render(request, "errors/404.html", status=404)
    lifted = researcher_unblock(actor=_user(request), block_id=block_id)
    messages.success(request, f"{lifted.researcher.username} may request this dataset again.")
    return redirect("web:dataset-blocklist", dataset_id=dataset.pk)
