"""The donor's pages for their rights (issue 19 §5, §6): the access history (accounting of
disclosures, with CSV and JSON exports), the export of their records, and erasure after a
confirmation that counts what will happen."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core.errors import DomainError
from genomics.models import GenomicFile
from marketplace.models import Erasure, Role, User
from marketplace.selectors.rights import disclosures_of_donor
from marketplace.services.erasure import erasure_preview, erasure_request
from marketplace.web.permissions import role_required


def _donor(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@role_required(Role.DONOR)
def access_history(request: HttpRequest) -> HttpResponse:
    donor = _donor(request)
    return render(
        request,
        "marketplace/donor/access_history.html",
        {
            "disclosures": disclosures_of_donor(donor=donor),
            "erasures": Erasure.objects.filter(donor=donor)[:20],
        },
    )


@role_required(Role.DONOR)
@require_http_methods(["GET", "POST"])
def erase(request: HttpRequest) -> HttpResponse:
    """GET: the files, and what erasing the chosen ones (all when none is picked) will do,
    counted.
    POST (with the confirmation ticked): withdraw and erase."""
    donor = _donor(request)
    source = request.POST if request.method == "POST" else request.GET
    # Files picked by name win over "all" (ticked by default): picking one file must
    # never erase everything.
    chosen = [c for c in source.getlist("files") if c != "all"]
    files: list[str] | str = chosen if chosen else "all"
    error = ""
    if request.method == "POST":
        try:
            erasure_request(donor=donor, files=files, confirm=source.get("confirm") == "yes")
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(
                request,
                "Erasure requested: your listings are withdrawn now, and the worker destroys "
                "the keys and then the files within a minute.",
            )
            return redirect("web:access-history")
    try:
        preview = erasure_preview(donor=donor, files=files)
    except DomainError as exc:
        preview, error = None, exc.message
    return render(
        request,
        "marketplace/donor/erase.html",
        {
            "files": GenomicFile.objects.filter(owner=donor).order_by("created_at"),
            "chosen": set(chosen) if files != "all" else set(),
            "everything": files == "all",
            "preview": preview,
            "error": error,
        },
        status=400 if error and request.method == "POST" else 200,
    )
