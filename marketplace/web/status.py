"""The footer's Status page: what `/health` checks, in words (issue 16 §11).

`/health` stays the machine-readable answer for load balancers; this page runs the same
checks and says, for each part, what it is for and whether it answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.cache import never_cache

from core.health import run_checks, worker_last_seen

# What each check means to someone using the site.
PARTS = {
    "database": ("Database", "accounts, listings, requests and the audit log"),
    "broker": ("Task queue", "hands uploads, grants and payments to the workers"),
    "storage": ("File storage", "keeps the encrypted files"),
    "chain": ("Chain node", "payments, escrow and anchoring"),
}


@dataclass(frozen=True)
class Part:
    name: str
    purpose: str
    ok: bool
    detail: str
    duration_ms: float


@never_cache
def status_page(request: HttpRequest) -> HttpResponse:
    """Always 200: this page is for people, and it is up even when a part is not (the
    503 for machines is `/health`'s)."""
    results = run_checks()
    parts = [
        Part(
            name=PARTS.get(r.name, (r.name, ""))[0],
            purpose=PARTS.get(r.name, ("", ""))[1],
            ok=r.ok,
            detail=r.detail,
            duration_ms=r.duration_ms,
        )
        for r in results
    ]
    database_ok = next((r.ok for r in results if r.name == "database"), False)
    seen = worker_last_seen() if database_ok else None
    healthy = all(p.ok for p in parts)
    return render(
        request,
        "marketplace/status.html",
        {
            "parts": parts,
            "healthy": healthy,
            "worker_last_seen": parse_datetime(seen) if seen else None,
        },
    )
