"""The request form as a researcher meets it (issue 16 §7, §10): the fit checked live, the
consent's conditions pre-selected, a purpose that cannot fit not sent, no second open
request, diseases by name, states and timelines in words."""

from __future__ import annotations

import re
from typing import cast

import pytest

from marketplace.models import AccessRequest, Dataset, Notification, Role, User
from marketplace.services.access_requests import request_submit
from marketplace.services.datasets import dataset_create
from tests.factories import UserFactory, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db
HMB, IRB, NCU, GS, DS = "DUO:0000006", "DUO:0000021", "DUO:0000046", "DUO:0000022", "DUO:0000007"
T2D, NIDDM1 = "MONDO:0005148", "MONDO:0011027"


def _dataset(codes: list[object], review: str = "committee") -> Dataset:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    return dataset_create(
        donor=donor,
        title="Cardiomyopathy trio exomes",
        description="",
        files=[ready_file(donor).pk],
        duo_codes=codes,
        price=str(10**18),
        access_days=90,
        review=review,
    )


def _researcher() -> User:
    return cast(User, UserFactory(role=Role.RESEARCHER))


def _checked(page: str, value: str) -> bool:
    box = re.search(rf'<input[^>]*value="{value}"[^>]*>', page)
    return bool(box) and "checked" in box.group(0)  # type: ignore[union-attr]


def test_the_fit_is_shown_live_with_the_reason_per_rule() -> None:
    dataset = _dataset([HMB, IRB])
    client = logged_in(_researcher())
    fit = f"/datasets/{dataset.pk}/request/fit"
    form = client.get(f"/datasets/{dataset.pk}/request/").content.decode()
    assert f'hx-get="{fit}"' in form  # the form asks as codes are chosen

    missing = client.get(fit, {"permission": HMB}).content.decode()
    assert 'data-fit="does_not_fit"' in missing
    assert "The consent requires IRB" in missing  # the matcher's own reason
    assert "Fits</strong>" in missing  # and the rules that pass, each with its outcome
    assert re.search(r"<button[^>]*disabled", missing), "a purpose that cannot fit is sendable"

    meets = client.get(fit, {"permission": HMB, "modifiers": [IRB]}).content.decode()
    assert 'data-fit="fits"' in meets and "You commit to IRB" in meets
    assert not re.search(r"<button[^>]*disabled", meets)

    nothing = client.get(fit).content.decode()
    assert 'data-fit="none"' in nothing and "Choose a research purpose" in nothing


def test_the_conditions_the_consent_requires_are_preselected() -> None:
    dataset = _dataset([HMB, IRB, "DUO:0000018", {"code": GS, "value": "EU"}])  # NPUNCU, GS
    page = logged_in(_researcher()).get(f"/datasets/{dataset.pk}/request/").content.decode()
    for code in (IRB, NCU, "DUO:0000045", GS):  # NPUNCU is offered as its parts NPU + NCU
        assert _checked(page, code), code
    assert not _checked(page, "DUO:0000019")  # PUB: not required, not ticked
    assert re.search(r'name="region"[^>]*value="EU"', page)


@pytest.mark.parametrize("review", ["auto", "committee"])
def test_a_purpose_that_cannot_fit_is_not_sent_from_the_web(review: str) -> None:
    dataset = _dataset([HMB, IRB], review=review)
    researcher = _researcher()
    refused = logged_in(researcher).post(
        f"/datasets/{dataset.pk}/request/",
        {"permission": HMB, "statement": "Heart disease variants.", "accept_terms": "on"},
    )
    body = refused.content.decode()
    assert refused.status_code == 400
    assert 'data-fit="does_not_fit"' in body and "The consent requires IRB" in body
    assert not AccessRequest.objects.filter(researcher=researcher).exists()


def test_back_and_resubmit_makes_no_second_request_and_links_to_the_first() -> None:
    dataset = _dataset([HMB, IRB])
    researcher = _researcher()
    client = logged_in(researcher)
    sent = {
        "permission": HMB,
        "modifiers": [IRB],
        "statement": "Heart disease variants.",
        "accept_terms": "on",
    }
    first = client.post(f"/datasets/{dataset.pk}/request/", sent)
    assert first.status_code == 302
    made = AccessRequest.objects.get(researcher=researcher)
    again = client.post(f"/datasets/{dataset.pk}/request/", sent)  # back, then send again
    body = again.content.decode()
    assert again.status_code == 409
    assert "You already have an open request for this dataset" in body
    assert f'href="/requests/{made.pk}/"' in body
    assert "waiting for the committee&#x27;s review" in body  # its state in words
    assert AccessRequest.objects.filter(researcher=researcher).count() == 1
    shown = client.get(f"/datasets/{dataset.pk}/request/").content.decode()
    assert f'href="/requests/{made.pk}/"' in shown  # said before the form is filled in


def test_a_disease_is_shown_by_its_name_with_its_id_in_small_print() -> None:
    dataset = _dataset([{"code": DS, "value": T2D}])
    researcher = _researcher()
    client = logged_in(researcher)
    named = 'type 2 diabetes mellitus <small class="code-id">MONDO:0005148</small>'
    assert named in client.get(f"/datasets/{dataset.pk}/request/").content.decode()
    request = request_submit(
        researcher=researcher,
        dataset_id=dataset.pk,
        purpose_codes=[{"code": DS, "value": NIDDM1}],
        statement="Diabetes subtypes.",
        accept_terms=True,
    )
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert '<small class="code-id">MONDO:0011027</small>' in page
    assert "(MONDO:0011027)</span>" not in page  # no bare id where the name is known
    catalogue = client.get("/datasets/").content.decode()
    assert named in catalogue
    form = client.get(f"/datasets/{dataset.pk}/request/").content.decode()
    assert '<option value="MONDO:0005148">type 2 diabetes mellitus</option>' in form


def test_the_timeline_names_moves_and_states_in_words() -> None:
    dataset = _dataset([HMB, IRB], review="auto")
    researcher = _researcher()
    request = request_submit(
        researcher=researcher,
        dataset_id=dataset.pk,
        purpose_codes=[HMB, IRB],
        statement="Heart disease variants.",
        accept_terms=True,
    )
    AccessRequest.objects.filter(pk=request.pk).update(state="payable")
    page = logged_in(researcher).get(f"/requests/{request.pk}/status").content.decode()
    assert "<strong>Sent</strong>" in page and "→ Approved" in page
    assert "<strong>submit</strong>" not in page and "→ submitted" not in page


def test_each_party_is_told_in_their_own_words_what_comes_next() -> None:
    dataset = _dataset([HMB, IRB])
    researcher = _researcher()
    request = request_submit(
        researcher=researcher,
        dataset_id=dataset.pk,
        purpose_codes=[HMB, IRB],
        statement="Heart disease variants.",
        accept_terms=True,
    )
    told = {n.user_id: n.message for n in Notification.objects.filter(request=request)}
    to_researcher, to_donor = told[researcher.pk], told[dataset.donor_id]
    assert to_researcher.startswith("Your request") and "you will be told" in to_researcher
    assert not to_donor.startswith("Your request") and "nothing to do" in to_donor


def test_every_refusal_names_the_state_in_words_not_as_stored() -> None:
    """The one place that puts states into sentences (lifecycle.state_in_words): no
    "A awaiting payment request", no stored code such as "payable" or "delivering"."""
    from marketplace.models.lifecycle import STATE_IN_WORDS, IllegalTransition, Move, State

    assert set(STATE_IN_WORDS) == set(State.values)
    dataset = _dataset([HMB, IRB])
    request = AccessRequest.objects.create(
        dataset=dataset, researcher=_researcher(), statement="x", amount=1, state="delivering"
    )
    with pytest.raises(IllegalTransition) as refused:
        request.advance(Move.WITHDRAW)
    assert refused.value.message.startswith(
        "This request is paid, and its files are being delivered, so it cannot be withdrawn"
    )


def test_a_price_beyond_the_escrow_is_refused_in_gene_not_in_base_units() -> None:
    """Another member of §10's "≥ 1E-18" kind: the escrow's limit was named in base units
    under a field that takes GENE."""
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    page = logged_in(donor).post(
        "/datasets/new/",
        {
            "title": "Dear panel",
            "file_ids": [str(ready_file(donor).pk)],
            "permission": HMB,
            "price": "80000000000",
            "access_days": "30",
            "review": "auto",
        },
    )
    body = page.content.decode()
    assert page.status_code == 400
    assert "Enter at most 79,228,162,514.264337593543950335 GENE" in body
    assert "79228162514264337593543950335" not in body
