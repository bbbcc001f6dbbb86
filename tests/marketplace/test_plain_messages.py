"""Messages in users' words, each saying what to do next (issue 16 §10)."""

from __future__ import annotations

from typing import cast

import pytest

from marketplace.models import AccessRequest, Dataset, Role, User
from marketplace.models.lifecycle import IllegalTransition, Move
from marketplace.services.access_requests import request_withdraw
from tests.factories import UserFactory, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


def _request(state: str) -> AccessRequest:
    donor = cast(User, UserFactory(role=Role.DONOR))
    dataset = Dataset.objects.create(
        donor=donor, title="Exomes", price=1000, access_days=30, duo_codes=[]
    )
    return AccessRequest.objects.create(
        dataset=dataset,
        researcher=cast(User, UserFactory(role=Role.RESEARCHER)),
        statement="Research.",
        amount=1000,
        state=state,
    )


def test_a_refused_move_names_the_state_in_words_and_what_to_do() -> None:
    request = _request("payable")
    with pytest.raises(IllegalTransition) as refused:
        request.advance(Move.APPROVE)
    message = refused.value.message
    assert message.startswith("This request is awaiting payment, so it cannot be approved")
    assert "Reload its page" in message and "A awaiting" not in message
    granted = _request("granted")
    with pytest.raises(Exception) as withdrawn:
        request_withdraw(researcher=granted.researcher, request_id=granted.pk)
    assert "This request is granted, so it cannot be withdrawn now" in str(withdrawn.value)


def test_a_zero_price_is_refused_in_gene_not_in_scientific_notation() -> None:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    stored = ready_file(donor)
    page = logged_in(donor).post(
        "/datasets/new/",
        {
            "title": "Free panel",
            "description": "",
            "file_ids": [str(stored.pk)],
            "permission": "DUO:0000042",
            "price": "0",
            "access_days": "30",
            "review": "auto",
        },
    )
    body = page.content.decode()
    assert page.status_code == 400
    assert "Enter a price above 0 GENE" in body and "1E-18" not in body
