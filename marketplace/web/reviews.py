"""The committee's work on a request in the browser (issue 19 §2, §6): a member's vote, a
return for changes, the request's thread, and the researcher's returned-request edit page.
Each view parses a form and calls one service; refusals come back in words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import DomainError, NotFound
from marketplace.models import AccessRequest, Role, User
from marketplace.selectors.access_requests import request_get
from marketplace.services.committees import (
    request_edit,
    request_message_post,
    request_resubmit,
    request_return,
    request_vote,
)
from marketplace.web.errors import form_add_domain_error
from marketplace.web.forms import (
    ConsentFields,
    DecisionForm,
    MessageForm,
    RequestEditForm,
    VoteForm,
)
from marketplace.web.permissions import committee_required, role_required
from marketplace.web.requests import refused

EVERY_ROLE = (Role.RESEARCHER, Role.DONOR, Role.REVIEWER, Role.ADMIN)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _invalid(request: HttpRequest, found: AccessRequest, form: object) -> HttpResponse:
    errors = getattr(form, "errors", {})
    text = " ".join(str(m) for messages_ in errors.values() for m in messages_)
    return refused(request, found, DomainError(text or "The form was not filled in."))


def _committee_act(
    request: HttpRequest,
    request_id: str,
    form_class: type[forms.Form],
    act: Callable[[User, AccessRequest, dict[str, Any]], str],
) -> HttpResponse:
    """A committee member's form on a request: parse it, call `act` (one service call;
    returns the message shown on success), and put a refusal in words on the page. The
    request must be one the member may see (NotFound, a 404, otherwise)."""
    member = _user(request)
    found = request_get(viewer=member, request_id=request_id)
    form = form_class(request.POST)
    if not form.is_valid():
        return _invalid(request, found, form)
    try:
        done = act(member, found, form.cleaned_data)
    except NotFound:
        raise
    except DomainError as exc:
        return refused(request, found, exc)
    messages.success(request, done)
    return redirect("web:request", request_id=found.pk)


@committee_required
@require_POST
def request_vote_view(request: HttpRequest, request_id: str) -> HttpResponse:
    def vote(member: User, found: AccessRequest, data: dict[str, Any]) -> str:
        request_vote(
            member=member,
            request_id=found.pk,
            vote=data["vote"],
            comment=data["comment"],
            expected_state=data["expected_state"] or None,
        )
        return f"Your vote ({data['vote']}) is recorded."

    return _committee_act(request, request_id, VoteForm, vote)


@committee_required
@require_POST
def request_return_view(request: HttpRequest, request_id: str) -> HttpResponse:
    def give_back(member: User, found: AccessRequest, data: dict[str, Any]) -> str:
        request_return(
            member=member,
            request_id=found.pk,
            reason=data["reason"],
            expected_state=data["expected_state"] or None,
        )
        return "Returned to the researcher for changes."

    return _committee_act(request, request_id, DecisionForm, give_back)


@role_required(*EVERY_ROLE)
@require_POST
def request_message_view(request: HttpRequest, request_id: str) -> HttpResponse:
    """A message in the request's thread (its researcher or a committee member)."""
    author = _user(request)
    found = request_get(viewer=author, request_id=request_id)
    form = MessageForm(request.POST)
    if not form.is_valid():
        return _invalid(request, found, form)
    request_message_post(author=author, request_id=found.pk, body=form.cleaned_data["body"])
    messages.success(request, "Message sent.")
    return redirect(f"/requests/{found.pk}/#thread")


@role_required(Role.RESEARCHER)
@require_http_methods(["GET", "POST"])
def request_edit_view(request: HttpRequest, request_id: str) -> HttpResponse:
    """The researcher's returned-request page: what the committee asked, the thread, and
    the request's purpose and statement to change, then send again."""
    researcher = _user(request)
    found = request_get(viewer=researcher, request_id=request_id)
    if found.researcher_id != researcher.pk:
        raise NotFound("No such request.")
    if found.state != AccessRequest.State.RETURNED:
        messages.info(request, "Only a request returned for changes can be edited.")
        return redirect("web:request", request_id=found.pk)
    initial = {"statement": found.statement, **ConsentFields.initial_from(found.purpose_codes)}
    form = RequestEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            request_edit(
                researcher=researcher,
                request_id=found.pk,
                statement=form.cleaned_data["statement"],
                purpose_codes=form.consent_codes(),
            )
            request_resubmit(researcher=researcher, request_id=found.pk)
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, "Your changed request is sent to the committee again.")
            return redirect("web:request", request_id=found.pk)
    from marketplace.selectors.committees import request_thread

    return render(
        request,
        "marketplace/requests/edit.html",
        {
            "req": found,
            "dataset": found.dataset,
            "form": form,
            "thread": request_thread(request=found),
            "message_form": MessageForm(),
        },
        status=400 if form.errors else 200,
    )
