"""The catalogue's "contains variant" search: the Beacon's own code path
(discovery.beacon.search), rendered for htmx, with the caller's privacy budget."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from disclosure.callers import caller_for_request
from disclosure.selectors import budget_remaining_many
from disclosure.types import BudgetStatus
from discovery.beacon.query import BeaconQueryError
from discovery.beacon.search import variant_search

# "17:43044295 A>G", "chr17-43044295-A-G" (gnomAD), "17 43044295 A G": VCF positions.
_VARIANT = re.compile(
    r"^\s*(?:chr)?(?P<chrom>[0-9]{1,2}|X|Y|MT?)[\s:\-]+(?P<pos>[0-9]{1,10})"
    r"[\s:\-]+(?P<ref>[ACGTN]+)[\s:\->/]+(?P<alt>[ACGTN]+)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Hit:
    dataset_id: str
    title: str
    count: int | None
    exact: bool
    budget: BudgetStatus | None


def variant_search_results(request: HttpRequest) -> HttpResponse:
    """GET ?variant=17:43044295 A>G[&duo=DUO:...]: the datasets that may say they hold it
    (the purpose, when given, is a Beacon filtering term), and the budget left."""
    text = request.GET.get("variant", "").strip()[:300]
    context: dict[str, object] = {"variant": text}
    if not text:
        return render(request, "discovery/_variant_results.html", context)
    match = _VARIANT.match(text)
    if match is None:
        context["error"] = "Write the variant as chromosome:position REF>ALT, e.g. 17:43044295 A>G."
        return render(request, "discovery/_variant_results.html", context)
    purpose = request.GET.get("duo", "").strip()
    filters = [purpose] if re.fullmatch(r"DUO:\d{7}", purpose) else []
    try:
        caller = caller_for_request(request)
        search = variant_search(
            caller=caller,
            parameters={
                "referenceName": match["chrom"],
                "start": int(match["pos"]) - 1,  # Beacon v2 is 0-based
                "referenceBases": match["ref"],
                "alternateBases": match["alt"],
            },
            filters=filters,
        )
    except (BeaconQueryError, ValueError) as exc:
        context["error"] = str(exc)
        return render(request, "discovery/_variant_results.html", context, status=400)
    budgets = budget_remaining_many(caller=caller, dataset_ids=[d.id for d in search.datasets])
    hits = [
        Hit(
            str(a.dataset.id),
            a.dataset.title,
            a.released.count,
            a.released.exact,
            budgets.get(a.dataset.id),
        )
        for a in search.answers
        if a.released is not None and not a.released.suppressed and a.released.exists
    ]
    lowest = min(budgets.values(), key=lambda b: b.remaining, default=None)
    context.update(
        hits=hits,
        searched=len(search.datasets),
        spent=[a.dataset.title for a in search.answers if a.released is None],
        lowest=lowest,
        purpose=filters[0] if filters else "",
        signed_in=request.user.is_authenticated,
    )
    return render(request, "discovery/_variant_results.html", context)
