"""Access requests in the browser: the request form, lists by role, the detail page with
its live state, and the actions each role may take there."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import DomainError, NotFound
from ledger.selectors.wallets import wallet_address_of, wallet_is_contract
from marketplace.consent import Match
from marketplace.models import AccessRequest, Dataset, Role, User
from marketplace.models.lifecycle import LIVE, Move
from marketplace.selectors.access_requests import (
    request_conditions,
    request_get,
    request_grant_view,
    request_list,
    request_open_for,
    request_payment_funds,
    request_permit,
    request_purpose_fit,
    request_timeline,
    request_voucher,
)
from marketplace.selectors.agreements import agreement_current
from marketplace.selectors.attachments import attachments_of, may_open_attachments
from marketplace.selectors.committees import (
    membership_role,
    pending_votes,
    request_review_status,
    request_thread,
    request_votes_all,
)
from marketplace.selectors.datasets import dataset_get
from marketplace.selectors.tiers import tier_list
from marketplace.services.access_requests import (
    DuplicateRequest,
    PurposeDoesNotFit,
    StaleDecision,
    request_approve,
    request_close,
    request_reject,
    request_submit,
    request_withdraw,
)
from marketplace.services.agreements import AgreementChanged
from marketplace.services.attachments import ATTACHABLE, attachment_add, attachment_open
from marketplace.services.blocklist import request_revoke_for_misuse
from marketplace.services.renewals import RENEWAL_ENDED, request_renew
from marketplace.services.settlement import request_revoke
from marketplace.web.errors import form_add_domain_error
from marketplace.web.forms import (
    AccessRequestForm,
    AttachmentForm,
    ConsentFields,
    DecisionForm,
    MessageForm,
    RenewForm,
    RevokeForm,
    VoteForm,
)
from marketplace.web.permissions import committee_required, role_required
from marketplace.web.responses import pdf_response

# States in which the page keeps asking the server for news.
MOVING = {"approved", "payable", "paid", "delivering", "refunding", "granted"}


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@role_required(Role.RESEARCHER)
@require_http_methods(["GET", "POST"])
def request_create(request: HttpRequest, dataset_id: str) -> HttpResponse:
    """The request form: the conditions the consent requires come pre-selected, the fit is
    checked live (request_fit) and again on sending, and a second open request for the
    dataset is refused with a link to the first (issue 16 §7)."""
    researcher = _user(request)
    dataset = dataset_get(dataset_id=dataset_id, viewer=researcher)
    conditions = [{"code": c.code, "value": c.value} for c in request_conditions(dataset=dataset)]
    agreement = agreement_current(dataset=dataset)
    form = AccessRequestForm(
        request.POST or None, initial=ConsentFields.initial_from(conditions), agreement=agreement
    )
    fit: Match | None = None
    # The scope bought: a region tier (README "Selling regions") or the whole dataset.
    tiers = list(tier_list(dataset=dataset, viewer=None))
    chosen_tier = (request.POST.get("tier") or request.GET.get("tier") or "").strip()
    open_request = request_open_for(
        researcher=researcher,
        dataset=dataset,
        tier=next((t for t in tiers if str(t.pk) == chosen_tier), None),
    )
    if (
        request.method == "POST"
        and agreement is not None
        and not request.POST.get("agreement_sha256")
    ):
        # The form was read before the donor asked for an agreement: say so, not only
        # "required" under a box the researcher has not seen yet.
        form.is_valid()
        form.add_error(
            None,
            "The donor now asks you to accept a data access agreement: read it below, "
            "tick the box to accept it, then send the request again.",
        )
    if request.method == "POST" and form.is_valid():
        try:
            created = request_submit(
                researcher=researcher,
                dataset_id=dataset.pk,
                purpose_codes=form.consent_codes(),
                statement=form.cleaned_data["statement"],
                accept_terms=form.cleaned_data["accept_terms"],
                agreement_sha256=form.cleaned_data.get("agreement_sha256"),
                tier_id=chosen_tier or None,
            )
        except DuplicateRequest as exc:
            open_request = exc.open_request
        except PurposeDoesNotFit:
            fit = request_purpose_fit(dataset=dataset, purpose_codes=form.consent_codes())
        except AgreementChanged as exc:
            # Show the new version, unaccepted: the researcher reads it and accepts again.
            data = request.POST.copy()
            data["agreement_sha256"] = agreement.sha256 if agreement else ""
            data.pop("accept_agreement", None)
            form = AccessRequestForm(data, agreement=agreement)
            form.is_valid()
            form_add_domain_error(form, exc)
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, "Your request is sent.")
            return redirect("web:request", request_id=created.pk)
    refused = request.method == "POST" and (form.errors or fit is not None or open_request)
    return render(
        request,
        "marketplace/requests/form.html",
        {
            "form": form,
            "dataset": dataset,
            "conditions": conditions,
            "fit": fit,
            "open_request": open_request,
            "agreement": agreement,
            "tiers": tiers,
            "chosen_tier": chosen_tier,
            "has_key": bool(researcher.crypt4gh_public_key),
            "wallet": wallet_address_of(user=researcher),
        },
        status=(409 if open_request else 400) if refused else 200,
    )


@role_required(Role.RESEARCHER)
@require_GET
def request_fit(request: HttpRequest, dataset_id: str) -> HttpResponse:
    """The consent matcher's answer for the purpose as the form holds it, for htmx: fits,
    needs review or does not fit, with the reason per rule; the send button is disabled
    while the purpose cannot fit."""
    dataset = dataset_get(dataset_id=dataset_id, viewer=_user(request))
    form = ConsentFields(request.GET)
    fit: Match | None = None
    fit_error = ""
    if form.is_valid():
        try:
            fit = request_purpose_fit(dataset=dataset, purpose_codes=form.consent_codes())
        except DomainError as exc:
            fit_error = exc.message
    elif "permission" not in form.errors or request.GET.get("permission"):
        fit_error = " ".join(str(e) for errors in form.errors.values() for e in errors)
    return render(
        request,
        "marketplace/requests/_fit.html",
        {"fit": fit, "fit_error": fit_error, "live": True},
    )


@role_required(Role.RESEARCHER, Role.DONOR)
def request_index(request: HttpRequest) -> HttpResponse:
    """Researchers: their requests. Donors: requests on their datasets."""
    user = _user(request)
    page = Paginator(request_list(viewer=user), 25).get_page(request.GET.get("page"))
    return render(request, "marketplace/requests/index.html", {"page": page})


@committee_required
def review_queue(request: HttpRequest) -> HttpResponse:
    """The committee's queue: the member's pending votes, then the requests of their
    committees' datasets (waiting ones first), filters by state and dataset."""
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
            "pending": pending_votes(user=user)[:50],
            "datasets": Dataset.objects.filter(
                pk__in=request_list(viewer=user).values("dataset_id")
            )
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


def _committee_context(user: User, found: AccessRequest) -> dict[str, object]:
    """What the committee's part of the page needs (issue 19 §6): the viewer's seat on the
    dataset's committee, the votes, and which of vote / decide / return they may do now."""
    dac = found.dataset.dac
    seat = membership_role(user=user, dac_id=dac.pk)
    if found.researcher_id == user.pk:
        seat = None  # nobody reviews their own request
    status = request_review_status(request=found)
    waiting = found.state == AccessRequest.State.SUBMITTED
    may_decide = seat is not None and (not dac.chair_decides or seat == "chair")
    return {
        "dac": dac,
        "seat": seat,
        "review": status,
        "all_votes": request_votes_all(request=found) if seat or user.role == Role.ADMIN else [],
        "my_vote": status.voted(user),
        "can_vote": waiting and seat is not None and dac.votes_needed > 0,
        "can_decide": waiting and may_decide and status.votes_missing == 0,
        "can_return": waiting and may_decide,
        "vote_form": VoteForm(initial={"expected_state": found.state}),
        "return_form": DecisionForm(initial={"expected_state": found.state}),
        "thread": request_thread(request=found),
        "can_post": seat is not None or found.researcher_id == user.pk,
        "message_form": MessageForm(),
        # The agreement the researcher accepted (issue 19 §3); the attachments come with
        # the rest of the page (`attachments_of`, opened by the committee only).
        "agreement": found.agreement,
    }


def _detail_context(request: HttpRequest, found: AccessRequest) -> dict[str, object]:
    user = _user(request)
    return _committee_context(user, found) | {
        "req": found,
        "timeline": request_timeline(request=found),
        "grant": request_grant_view(request=found),
        "voucher": request_voucher(request=found) if found.researcher_id == user.pk else None,
        "is_researcher": found.researcher_id == user.pk,
        "is_donor": found.dataset.donor_id == user.pk,
        # Where "Requests" leads: the review queue for staff and committee members.
        "is_reviewer": user.role in (Role.REVIEWER, Role.ADMIN)
        or membership_role(user=user, dac_id=found.dataset.dac_id) is not None,
        "is_admin": user.role == Role.ADMIN,
        "moving": found.state in MOVING,
        "can_withdraw": found.researcher_id == user.pk
        and found.state in ("submitted", "returned", "approved", "payable", "paid"),
        "can_revoke": found.state in ("granted", "settled")
        and (found.dataset.donor_id == user.pk or user.role == Role.ADMIN),
        "decision_form": DecisionForm(initial={"expected_state": found.state}),
        "can_close": user.role == Role.ADMIN and found.can(Move.CLOSE),
        "close_form": DecisionForm(),
        "revoke_form": RevokeForm(),
        **_renewal_context(found, user),
        "attachments": attachments_of(viewer=user, request=found),
        "may_open_attachments": may_open_attachments(user, found),
        "attach_form": AttachmentForm()
        if found.researcher_id == user.pk and found.state in ATTACHABLE
        else None,
    }


def _renewal_context(found: AccessRequest, user: User) -> dict[str, object]:
    """What the page says about renewals: the grant this request renews, the renewals of
    it, and for its researcher, while access runs and none is on its way, the form."""
    renewals = list(found.renewals.order_by("-created_at"))
    open_renewal = next((r for r in renewals if r.state not in RENEWAL_ENDED), None)
    can_renew = found.researcher_id == user.pk and found.state in LIVE and open_renewal is None
    agreement = agreement_current(dataset=found.dataset) if can_renew else None
    return {
        "renewals": renewals,
        "can_renew": can_renew,
        "renew_agreement": agreement,
        "renew_form": RenewForm(agreement=agreement) if can_renew else None,
    }


@role_required(Role.RESEARCHER)
@require_POST
def request_renew_view(request: HttpRequest, request_id: str) -> HttpResponse:
    researcher = _user(request)
    found = request_get(viewer=researcher, request_id=request_id)
    agreement = agreement_current(dataset=found.dataset)
    form = RenewForm(request.POST, agreement=agreement)
    if form.is_valid():
        try:
            renewal = request_renew(
                researcher=researcher,
                request_id=found.pk,
                statement=form.cleaned_data["statement"],
                agreement_sha256=form.cleaned_data.get("agreement_sha256"),
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, "Your renewal is sent: it is reviewed like a request.")
            return redirect("web:request", request_id=renewal.pk)
    context = _detail_context(request, found) | {"renew_form": form}
    return render(request, "marketplace/requests/detail.html", context, status=400)


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


@committee_required
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
        return refused(request, found, exc)
    except DomainError as exc:  # not this committee's decider, votes missing, no fit
        if isinstance(exc, NotFound):
            raise
        return refused(request, found, exc)
    messages.success(request, "Approved." if decision == "approve" else "Rejected.")
    return redirect("web:request", request_id=found.pk)


def refused(request: HttpRequest, found: AccessRequest, exc: DomainError) -> HttpResponse:
    """A refused committee action, said in words with the way back to the request."""
    return render(
        request,
        "errors/refused.html",
        {"message": exc.message, "back_url": reverse("web:request", args=[found.pk])},
        status=exc.status,
    )


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
    form = RevokeForm(request.POST)
    if not form.is_valid():
        context = _detail_context(request, found) | {"revoke_form": form}
        return render(request, "marketplace/requests/detail.html", context, status=400)
    block = form.cleaned_data["block"]
    revoke = request_revoke_for_misuse if block else request_revoke
    revoke(actor=user, request_id=found.pk, reason=form.cleaned_data["reason"])
    messages.success(
        request,
        "Access revoked: downloads stopped and the keys were deleted. Nothing is refunded: "
        "the files had already been delivered."
        + (
            f" {found.researcher.username} is blocked from this dataset: their other requests "
            "for it ended and new ones are refused."
            if block
            else ""
        ),
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


@role_required(Role.RESEARCHER)
@require_POST
def request_attach_view(request: HttpRequest, request_id: str) -> HttpResponse:
    researcher = _user(request)
    found = request_get(viewer=researcher, request_id=request_id)
    form = AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["document"]
        if upload.size > settings.ATTACHMENT_MAX_BYTES:
            # Said before reading the whole body into memory.
            form.add_error("document", f"At most {settings.ATTACHMENT_MAX_BYTES // 2**20} MiB.")
        else:
            try:
                attachment_add(
                    researcher=researcher,
                    request_id=found.pk,
                    filename=upload.name or "attachment.pdf",
                    data=upload.read(),
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, f"“{upload.name}” is attached for the committee.")
                return redirect("web:request", request_id=found.pk)
    context = _detail_context(request, found) | {"attach_form": form}
    return render(request, "marketplace/requests/detail.html", context, status=400)


@role_required(Role.RESEARCHER, Role.DONOR, Role.REVIEWER, Role.ADMIN)
def request_attachment_view(
    request: HttpRequest, request_id: str, attachment_id: str
) -> HttpResponse:
    """The PDF, for the committee only; downloaded, never rendered inline by our origin."""
    viewer = _user(request)
    found = request_get(viewer=viewer, request_id=request_id)
    if not found.attachments.filter(pk=attachment_id).exists():
        return render(request, "errors/404.html", status=404)
    try:
        filename, data = attachment_open(viewer=viewer, attachment_id=attachment_id)
    except NotFound:
        return render(request, "errors/404.html", status=404)
    return pdf_response(filename, data)
