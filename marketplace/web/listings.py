"""A donor's listings: create, edit, withdraw consent; and the donor's dashboard."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core.errors import DomainError
from genomics.models import GenomicFile
from ledger.selectors.wallets import wallet_address_of
from marketplace.models import AccessRequest, Dataset, Role, User
from marketplace.selectors.datasets import dataset_get
from marketplace.selectors.earnings import dataset_earnings
from marketplace.services.datasets import dataset_create, dataset_update, dataset_withdraw
from marketplace.web.errors import form_add_domain_error
from marketplace.web.forms import ConsentFields, ListingForm
from marketplace.web.permissions import role_required

OPEN = ("submitted", "returned", "approved", "payable", "paid", "delivering")


def _donor(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _ready_files(donor: User) -> list[tuple[str, str]]:
    files = GenomicFile.objects.filter(owner=donor, state=GenomicFile.State.READY)
    return [
        (str(f.pk), f"{f.filename} ({f.format}, {f.metadata.get('reference_build') or 'no build'})")
        for f in files.order_by("-created_at")
    ]


@role_required(Role.DONOR)
def dashboard(request: HttpRequest) -> HttpResponse:
    donor = _donor(request)
    datasets = list(Dataset.objects.filter(donor=donor).order_by("-created_at"))
    rows = [(d, dataset_earnings(dataset=d)) for d in datasets]
    totals = {
        key: sum(getattr(e, key) for _, e in rows)
        for key in ("paid", "released", "fee", "refunded", "in_escrow")
    }
    requests = (
        AccessRequest.objects.filter(dataset__donor=donor)
        .select_related("dataset", "researcher")
        .order_by("-created_at")[:50]
    )
    return render(
        request,
        "marketplace/donor/dashboard.html",
        {
            "rows": rows,
            "totals": totals,
            "requests": requests,
            "files_ready": len(_ready_files(donor)),
        },
    )


@role_required(Role.DONOR)
@require_http_methods(["GET", "POST"])
def listing_create(request: HttpRequest) -> HttpResponse:
    donor = _donor(request)
    files = _ready_files(donor)
    form = ListingForm(request.POST or None, files=files)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = dataset_create(donor=donor, **form.terms())
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, f"“{dataset.title}” is listed.")
            return redirect("web:dataset", dataset_id=dataset.pk)
    return render(
        request,
        "marketplace/donor/listing_form.html",
        {
            "form": form,
            "files": files,
            "editing": None,
            # Listing needs a payout wallet: the page says so before the donor fills it in.
            "payout_wallet": wallet_address_of(user=donor),
        },
        status=400 if form.errors else 200,
    )


@role_required(Role.DONOR)
@require_http_methods(["GET", "POST"])
def listing_edit(request: HttpRequest, dataset_id: str) -> HttpResponse:
    donor = _donor(request)
    dataset = dataset_get(dataset_id=dataset_id, viewer=donor)
    if dataset.donor_id != donor.pk:
        return render(request, "errors/404.html", status=404)
    files = _ready_files(donor)
    initial = {
        "title": dataset.title,
        "description": dataset.description,
        "file_ids": [str(pk) for pk in dataset.files.values_list("pk", flat=True)],
        "price": dataset.price / 10**18,
        "access_days": dataset.access_days,
        "review": dataset.review,
        "dac": str(dataset.dac_id),
        **ConsentFields.initial_from(dataset.duo_codes),
    }
    form = ListingForm(request.POST or None, files=files, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            dataset_update(dataset=dataset, actor=donor, **form.terms())
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, "The listing is updated.")
            return redirect("web:dataset", dataset_id=dataset.pk)
    return render(
        request,
        "marketplace/donor/listing_form.html",
        {"form": form, "files": files, "editing": dataset},
        status=400 if form.errors else 200,
    )


@role_required(Role.DONOR, Role.ADMIN)
@require_http_methods(["GET", "POST"])
def listing_withdraw(request: HttpRequest, dataset_id: str) -> HttpResponse:
    """A confirmation that says what happens, then the withdrawal."""
    actor = _donor(request)
    dataset = dataset_get(dataset_id=dataset_id, viewer=actor)
    if dataset.donor_id != actor.pk and actor.role != Role.ADMIN:
        return render(request, "errors/404.html", status=404)
    if request.method == "POST":
        dataset_withdraw(dataset=dataset, actor=actor)
        messages.success(request, f"Consent for “{dataset.title}” is withdrawn.")
        return redirect("web:dashboard" if actor.role == Role.DONOR else "web:home")
    requests = AccessRequest.objects.filter(dataset=dataset)
    counts = {
        "unpaid": requests.filter(state__in=("submitted", "approved", "payable")).count(),
        "paid": requests.filter(state__in=("paid", "delivering")).count(),
        "granted": requests.filter(state__in=("granted", "settled")).count(),
    }
    return render(
        request, "marketplace/donor/withdraw.html", {"dataset": dataset, "counts": counts}
    )
