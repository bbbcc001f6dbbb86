"""The public catalogue and dataset pages."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from core.errors import ValidationError
from marketplace.consent import all_terms
from marketplace.consent.codes import ConsentCode, parse_purpose_filter
from marketplace.consent.diseases import picker
from marketplace.consent.matching import CC, COMMITMENTS, DS, GS
from marketplace.models import AccessRequest, Dataset, Role, User
from marketplace.selectors.datasets import DatasetFilters, dataset_get, dataset_list
from marketplace.selectors.earnings import dataset_earnings
from marketplace.web.forms import DelistForm
from marketplace.web.results_cache import cached_results

FORMATS = ("VCF", "BCF", "BAM", "CRAM", "SAM", "FASTQ", "FASTA", "23andMe", "AncestryDNA")
PAGE_SIZE = 20


def _viewer(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


# What a purpose can list besides its permission: the conditions it commits to and
# clinical care use (DUO modifiers), offered as checkboxes.
PURPOSE_MODIFIERS = sorted(COMMITMENTS | {CC})


def _purpose(request: HttpRequest, raw: dict[str, object]) -> tuple[ConsentCode, ...]:
    """The research purpose the consent filter asks about: a permission (`duo`), the
    disease(s) of DS research, the region of GS, and the conditions ticked (`commit`). A
    purpose that cannot be read is ignored and said so."""
    pieces = [str(raw["duo"])] if str(raw["duo"]).startswith("DUO:") else []
    diseases = str(raw["disease"]).replace(",", " ").split()
    if pieces == [DS]:
        pieces = [f"{DS}={d}" for d in diseases] or [DS]
    commits = [c for c in request.GET.getlist("commit") if c in PURPOSE_MODIFIERS][:20]
    raw["commit"] = commits
    pieces += commits
    if raw["region"]:
        pieces.append(f"{GS}={raw['region']}")
    try:
        return parse_purpose_filter(pieces, field="duo")
    except ValidationError as error:
        raw["duo_error"] = " ".join(error.fields.get("duo", [])) or str(error)
        return ()


def _filters(request: HttpRequest) -> tuple[DatasetFilters, dict[str, object]]:
    """Filters from the query string; a malformed price or purpose is ignored and said so."""
    raw: dict[str, object] = {
        key: request.GET.get(key, "").strip()[:200]
        for key in ("q", "format", "duo", "max", "disease")
    }
    raw["reference"] = request.GET.get("reference", "").strip()[:32]
    raw["region"] = request.GET.get("region", "").strip()[:64]
    max_price = None
    if raw["max"]:
        try:
            max_price = (Decimal(str(raw["max"])) * 10**18).to_integral_value()
        except InvalidOperation:
            raw["max_error"] = "Enter the most you would pay as a number of GENE, e.g. 25."
    duo = _purpose(request, raw)
    return (
        DatasetFilters(
            q=str(raw["q"]),
            format=str(raw["format"]),
            duo=duo,
            max_price=max_price,
            reference=str(raw["reference"]),
        ),
        raw,
    )


def catalogue(request: HttpRequest) -> HttpResponse:
    filters, raw = _filters(request)
    query = request.GET.copy()
    query.pop("page", None)
    page_number = request.GET.get("page", "")

    def build() -> str:
        page = Paginator(dataset_list(filters=filters), PAGE_SIZE).get_page(page_number)
        return render_to_string(
            "marketplace/catalogue/_results.html", {"page": page, "query": query.urlencode()}
        )

    results = cached_results({"query": query.urlencode(), "page": page_number}, build)
    # htmx asks for the results alone as the visitor types; without JS the form submits.
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "results":
        return HttpResponse(results)
    context = {
        "results": mark_safe(results),  # noqa: S308 - our own template's output
        "filters": raw,
        "formats": FORMATS,
        "permissions": [t for t in all_terms() if t.is_permission],
        "purpose_modifiers": [t for t in all_terms() if t.id in PURPOSE_MODIFIERS],
        "diseases": picker(),
        "references": ("GRCh37", "GRCh38", "T2T-CHM13"),
    }
    return render(request, "marketplace/catalogue/index.html", context)


def dataset_page(
    request: HttpRequest,
    dataset_id: str,
    *,
    delist_form: DelistForm | None = None,
    status: int = 200,
) -> HttpResponse:
    viewer = _viewer(request)
    dataset = dataset_get(dataset_id=dataset_id, viewer=viewer)
    owner = viewer is not None and viewer.pk == dataset.donor_id
    context: dict[str, object] = {"dataset": dataset, "owner": owner}
    if viewer is not None and viewer.role == Role.ADMIN and dataset.state == Dataset.State.LISTED:
        context["delist_form"] = delist_form or DelistForm()
    if owner or (viewer is not None and viewer.role in (Role.REVIEWER, Role.ADMIN)):
        context["earnings"] = dataset_earnings(dataset=dataset)
        context["requests"] = (
            AccessRequest.objects.filter(dataset=dataset)
            .select_related("researcher")
            .order_by("-created_at")[:50]
        )
    if viewer is not None and viewer.role == Role.RESEARCHER:
        context["my_requests"] = AccessRequest.objects.filter(
            dataset=dataset, researcher=viewer
        ).order_by("-created_at")
    return render(request, "marketplace/datasets/detail.html", context, status=status)
