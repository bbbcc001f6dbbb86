"""What reviewers and admins watch: the audit log with its verification and anchors, and
the state of the chain (addresses, head, indexer lag, pending operator transactions)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from requests.exceptions import RequestException

from ledger.models import OperatorTransaction
from ledger.selectors.chain_status import chain_status
from marketplace.models import Anchor, AuditEntry, Role
from marketplace.services.audit import audit_verify, audit_views
from marketplace.web.permissions import role_required


@role_required(Role.REVIEWER, Role.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    entries = AuditEntry.objects.order_by("-seq")
    action = request.GET.get("action", "").strip()[:64]
    if action:
        entries = entries.filter(action__startswith=action)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    views = audit_views(page.object_list)
    return render(
        request,
        "marketplace/oversight/audit.html",
        {
            "page": page,
            "views": views,
            "action": action,
            "check": audit_verify(),
            "anchors": Anchor.objects.order_by("-created_at")[:20],
        },
    )


@role_required(Role.REVIEWER, Role.ADMIN)
def chain_page(request: HttpRequest) -> HttpResponse:
    try:
        status, problem = chain_status(), ""
    except (RequestException, OSError):
        status, problem = None, "The chain node does not answer."
    pending = OperatorTransaction.objects.exclude(status__in=("mined", "failed")).order_by(
        "created_at"
    )[:50]
    # Reverted or refused operator transactions: settlement retries them under new attempt
    # keys, but a human should see every one (issue 12: they used to be hidden).
    failed = OperatorTransaction.objects.filter(status="failed").order_by("-updated_at")[:50]
    return render(
        request,
        "marketplace/oversight/chain.html",
        {"status": status, "problem": problem, "pending": pending, "failed": failed},
    )
