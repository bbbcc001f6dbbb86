"""Access requests in the browser: the request form, lists by role, the detail page with
its live state, and the actions each role may take there."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import DomainError
from ledger.selectors.wallets import wallet_address_of, wallet_is_contract
from marketplace.models import AccessRequest, Dataset, Role, User
from marketplace.models.lifecycle import Move
from marketplace.selectors.access_requests import (
    request_get,
    request_grant_view,
    request_list,
    request_payment_funds,
    request_permit,
    request_timeline,
    request_voucher,
)
from marketplace.selectors.datasets import dataset_get
from marketplace.selectors.tiers import tier_list
from marketplace.services.access_requests import (
    StaleDecision,
    request_approve,
    request_close,
    request_reject,
    request_submit,
    request_withdraw,
)
from marketplace.services.settlement import request_revoke
from marketplace.web.errors import form_add_domain_error
from marketplace.web.forms import AccessRequestForm, DecisionForm
from marketplace.web.permissions import role_required

# States in which the page keeps asking the server for news.
MOVING = {"approved", "payable", "paid", "delivering", "refunding", "granted"}


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@role_required(Role.RESEARCHER)
@require_http_methods(["GET", "POST"])
def request_create(request: HttpRequest, dataset_id: str) -> HttpResponse:
    researcher = _user(request)
    dataset = dataset_get(dataset_id=dataset_id, viewer=researcher)
    form = AccessRequestForm(request.POST or None)
    # The scope bought: a region tier (README "Selling regions") or the whole dataset.
    tiers = list(tier_list(dataset=dataset, viewer=None))
    chosen_tier = (request.POST.get("tier") or request.GET.get("tier") or "").strip()
    if request.method == "POST" and form.is_valid():
        try:
            created = request_submit(
                researcher=researcher,
                dataset_id=dataset.pk,
                purpose_codes=form.consent_codes(),
                statement=form.cleaned_data["statement"],
                accept_terms=form.cleaned_data["accept_terms"],
                tier_id=chosen_tier or None,
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            if created.state == AccessRequest.State.REJECTED:
                messages.error(request, "Your purpose does not fit the donor's consent.")
            else:
                messages.success(request, "Your request is sent.")
            return redirect("web:request", request_id=created.pk)
    return render(
        request,
        "marketplace/requests/form.html",
        {
            "form": form,
            "dataset": dataset,
            "tiers": tiers,
            "chosen_tier": chosen_tier,
            "has_key": bool(researcher.crypt4gh_public_key),
            "wallet": wallet_address_of(user=researcher),
        },
        status=400 if form.errors else 200,
    )


@role_required(Role.RESEARCHER, Role.DONOR)
def request_index(request: HttpRequest) -> HttpResponse:
    """Researchers: their requests. Donors: requests on their datasets."""
    user = _user(request)
    page = Paginator(request_list(viewer=user), 25).get_page(request.GET.get("page"))
    return render(request, "marketplace/requests/index.html", {"page": page})


@role_required(Role.REVIEWER, Role.ADMIN)
def review_queue(request: HttpRequest) -> HttpResponse:
    """The committee's queue: waiting requests first, filters by state and dataset."""
    user = _user(request)
    state = request.GET.get("state", "submitted")
    dataset = request.GET.get("dataset", "")
    requests = request_list(viewer=user).order_by("created_at")
    if state in AccessRequest.State.values:
        requests = requests.filter(state=state)
    if dataset:
        requests = requests.filter(dataset_id=dataset) if _is_uuid(dataset) else requests.none()
    page = Paginator(requests, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "marketplace/review/queue.html",
        {
            "page": page,
            "state": state,
            "dataset": dataset,
            "states": AccessRequest.State.choices,
            "datasets": Dataset.objects.filter(requests__isnull=False)
            .distinct()
            .order_by("title")
            .only("id", "title")[:200],
            "query": query.urlencode(),
        },
    )


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _numbers_as_strings(data: object) -> object:
    """uint256 values as decimal strings: JavaScript numbers would round them."""
    if isinstance(data, dict):
        return {key: _numbers_as_strings(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_numbers_as_strings(value) for value in data]
    if isinstance(data, int) and not isinstance(data, bool):
        return str(data)
    return data


def _detail_context(request: HttpRequest, found: AccessRequest) -> dict[str, object]:
    user = _user(request)
    return {
        "req": found,
        "timeline": request_timeline(request=found),
        "grant": request_grant_view(request=found),
        "voucher": request_voucher(request=found) if found.researcher_id == user.pk else None,
        "is_researcher": found.researcher_id == user.pk,
        "is_donor": found.dataset.donor_id == user.pk,
        "is_reviewer": user.role in (Role.REVIEWER, Role.ADMIN),
        "is_admin": user.role == Role.ADMIN,
        "moving": found.state in MOVING,
        "can_withdraw": found.researcher_id == user.pk
        and found.state in ("submitted", "approved", "payable", "paid"),
        "can_revoke": found.state in ("granted", "settled")
        and (found.dataset.donor_id == user.pk or user.role == Role.ADMIN),
        "decision_form": DecisionForm(initial={"expected_state": found.state}),
        "can_close": user.role == Role.ADMIN and found.can(Move.CLOSE),
        "close_form": DecisionForm(),
        "revoke_form": DecisionForm(),
    }


@role_required(Role.RESEARCHER, Role.DONOR, Role.REVIEWER, Role.ADMIN)
def request_page(request: HttpRequest, request_id: str) -> HttpResponse:
    found = request_get(viewer=_user(request), request_id=request_id)
    context = _detail_context(request, found)
    if context["voucher"] is not None:
        # A smart-contract wallet (a Safe) pays with its own transactions: no permit, no
        # buttons that would ask it for a signature it cannot give.
        context["contract_wallet"] = wallet_is_contract(address=found.buyer)
        context["permit"] = _numbers_as_strings(request_permit(request=found))
        # Say what is missing before the wallet fails with a raw JSON-RPC error.
        context["funds"] = request_payment_funds(
            request=found, contract_wallet=bool(context["contract_wallet"])
        )
    return render(request, "marketplace/requests/detail.html", context)


@role_required(Role.RESEARCHER, Role.DONOR, Role.REVIEWER, Role.ADMIN)
def request_status(request: HttpRequest, request_id: str) -> HttpResponse:
    """The live part of the page (state, timeline, downloads), for htmx polling."""
    found = request_get(viewer=_user(request), request_id=request_id)
    response = render(request, "marketplace/requests/_status.html", _detail_context(request, found))
    # The state moved on while the page was open (the voucher arrived, the payment was
    # confirmed, access was granted): reload it whole, so the forms and the payment panel
    # around this part match the new state.
    shown = request.GET.get("shown")
    if shown and shown != found.state:
        response["HX-Refresh"] = "true"
    return response


@role_required(Role.REVIEWER, Role.ADMIN)
@require_POST
def request_decide(request: HttpRequest, request_id: str, decision: str) -> HttpResponse:
    reviewer = _user(request)
    found = request_get(viewer=reviewer, request_id=request_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        context = _detail_context(request, found) | {"decision_form": form}
        return render(request, "marketplace/requests/detail.html", context, status=400)
    decide = request_approve if decision == "approve" else request_reject
    try:
        decide(
            reviewer=reviewer,
            request_id=found.pk,
            reason=form.cleaned_data["reason"],
            expected_state=form.cleaned_data["expected_state"] or None,
        )
    except StaleDecision as exc:
        return render(
            request,
            "errors/refused.html",
            {"message": exc.message, "back_url": reverse("web:request", args=[found.pk])},
            status=exc.status,
        )
    messages.success(request, "Approved." if decision == "approve" else "Rejected.")
    return redirect("web:request", request_id=found.pk)


@role_required(Role.RESEARCHER)
@require_POST
def request_withdraw_view(request: HttpRequest, request_id: str) -> HttpResponse:
    withdrawn = request_withdraw(researcher=_user(request), request_id=request_id)
    messages.success(
        request,
        "Withdrawn; your payment is being refunded."
        if withdrawn.state == AccessRequest.State.REFUNDING
        else "Withdrawn.",
    )
    return redirect("web:request", request_id=withdrawn.pk)


@role_required(Role.DONOR, Role.ADMIN)
@require_POST
def request_revoke_view(request: HttpRequest, request_id: str) -> HttpResponse:
    user = _user(request)
    found = request_get(viewer=user, request_id=request_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        context = _detail_context(request, found) | {"revoke_form": form}
        return render(request, "marketplace/requests/detail.html", context, status=400)
    request_revoke(actor=user, request_id=found.pk, reason=form.cleaned_data["reason"])
    messages.success(
        request,
        "Access revoked: downloads stopped and the keys were deleted. Nothing is refunded: "
        "the files had already been delivered.",
    )
    return redirect("web:request", request_id=found.pk)


@role_required(Role.ADMIN)
@require_POST
def request_close_view(request: HttpRequest, request_id: str) -> HttpResponse:
    """An admin closes a waiting request; a payable one's voucher is cancelled by the
    worker (the web builds no transaction)."""
    admin = _user(request)
    found = request_get(viewer=admin, request_id=request_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        context = _detail_context(request, found) | {"close_form": form}
        return render(request, "marketplace/requests/detail.html", context, status=400)
    closed = request_close(admin=admin, request_id=found.pk, reason=form.cleaned_data["reason"])
    messages.success(
        request,
        "Closed. The worker cancels its voucher on chain, so it can no longer be paid."
        if closed.voucher_signature
        else "Closed.",
    )
    return redirect("web:request", request_id=found.pk)
