"""Region tiers in the web UI (README "Selling regions"): the donor's form to sell a
dataset limited to regions, and a tier's page (what a tier grant's visa names)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.errors import DomainError
from marketplace.models import Role, User
from marketplace.selectors.datasets import dataset_get
from marketplace.selectors.tiers import tier_get
from marketplace.services.tiers import dataset_set_whole_for_sale, tier_create
from marketplace.web.errors import form_add_domain_error
from marketplace.web.permissions import role_required

BED_FORM_MAX_BYTES = 2 * 1024 * 1024


class TierForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Tier name", help_text="What researchers choose, e.g. “BRCA panel”."
    )
    price = forms.DecimalField(
        label="Price (GENE)",
        min_value=Decimal("0.000000000000000001"),
        max_digits=60,
        decimal_places=18,
        help_text="What a researcher pays for the tier for one access period.",
    )
    genes = forms.CharField(
        required=False,
        max_length=20_000,
        label="Gene names",
        help_text="HGNC symbols of protein-coding genes, separated by commas or spaces "
        "(resolved in the shipped Ensembl gene table of the files' reference build).",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    bed = forms.FileField(
        required=False,
        label="…or a BED file",
        help_text="chrom, start, end (0-based, end exclusive), as UCSC BED.",
    )
    regions_only = forms.BooleanField(
        required=False,
        label="Sell regions only",
        help_text="Stop selling the whole dataset: researchers then choose one of its tiers.",
    )


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@role_required(Role.DONOR)
def tier_create_view(request: HttpRequest, dataset_id: str) -> HttpResponse:
    donor = _user(request)
    dataset = dataset_get(dataset_id=dataset_id, viewer=donor)
    if dataset.donor_id != donor.pk:
        raise Http404("No such dataset.")
    form = TierForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        bed = ""
        upload = form.cleaned_data.get("bed")
        try:
            if upload is not None:
                if upload.size > BED_FORM_MAX_BYTES:
                    raise forms.ValidationError("The BED file is too large.")
                bed = upload.read().decode()
            tier_create(
                dataset=dataset,
                actor=donor,
                name=form.cleaned_data["name"],
                price=str(int(form.cleaned_data["price"] * 10**18)),
                bed=bed,
                genes=form.cleaned_data["genes"].replace(",", " ").split(),
            )
            if form.cleaned_data["regions_only"]:
                dataset_set_whole_for_sale(dataset=dataset, actor=donor, whole=False)
        except (UnicodeDecodeError, forms.ValidationError):
            form.add_error("bed", "The BED file must be text, at most 2 MiB.")
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(
                request, "The tier is being prepared: it goes on sale once its files are sliced."
            )
            return redirect("web:dataset", dataset_id=dataset.pk)
    return render(
        request,
        "marketplace/tiers/form.html",
        {"form": form, "dataset": dataset},
        status=400 if form.errors else 200,
    )


def tier_page(request: HttpRequest, dataset_id: str, tier_id: str) -> HttpResponse:
    """A tier for sale: its regions, price and the request button (a tier grant's visa
    names this page as its `value`)."""
    viewer = request.user if isinstance(request.user, User) else None
    dataset = dataset_get(dataset_id=dataset_id, viewer=viewer)
    tier = tier_get(dataset=dataset, tier_id=tier_id)
    if tier is None:
        raise Http404("No such tier.")
    return render(
        request,
        "marketplace/tiers/detail.html",
        {"dataset": dataset, "tier": tier, "regions": tier.regions[:200]},
    )
