"""A donor's payout wallet (issue 16 §1): every page's header shows the profile and the
wallet status; listing, on the web and through the API, needs a linked wallet and says
where to link one; a request that waits for a missing wallet is told to its donor."""

from __future__ import annotations

from typing import cast

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ledger.models import WalletLink
from marketplace.models import AccessRequest, Dataset, Notification, Role, User
from marketplace.services.datasets import dataset_create
from marketplace.tasks import sign_voucher
from tests.factories import UserFactory, payout_wallet, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db

LISTING = {
    "title": "Diabetes panel",
    "description": "",
    "permission": "DUO:0000042",
    "price": "1.5",
    "access_days": "30",
    "review": "auto",
}


def walletless_donor() -> User:
    return cast(User, UserFactory(role=Role.DONOR, payout_wallet=False))


@pytest.mark.parametrize("role", [Role.DONOR, Role.RESEARCHER, Role.REVIEWER, Role.ADMIN])
def test_every_role_has_a_profile_link_and_a_wallet_status_in_the_header(role: Role) -> None:
    user = cast(User, UserFactory(role=role, payout_wallet=False))
    client = logged_in(user)
    page = client.get("/datasets/").content.decode()
    assert 'class="whoami" href="/profile/"' in page
    assert "No wallet linked" in page and 'href="/profile/#wallet"' in page
    address = payout_wallet(user)
    page = client.get("/datasets/").content.decode()
    assert "No wallet linked" not in page and f'title="Linked wallet {address}"' in page


def test_the_web_listing_form_leads_a_walletless_donor_to_link_one() -> None:
    donor = walletless_donor()
    stored = ready_file(donor)
    client = logged_in(donor)
    form_page = client.get("/datasets/new/").content.decode()
    assert "Link a payout wallet first" in form_page
    assert 'href="/profile/#wallet"' in form_page
    refused = client.post("/datasets/new/", {**LISTING, "file_ids": [str(stored.pk)]})
    assert refused.status_code == 400 and "Link a payout wallet before listing" in (
        refused.content.decode()
    )
    assert not Dataset.objects.exists()
    payout_wallet(donor)
    assert "Link a payout wallet first" not in client.get("/datasets/new/").content.decode()
    listed = client.post("/datasets/new/", {**LISTING, "file_ids": [str(stored.pk)]})
    assert listed.status_code == 302 and Dataset.objects.count() == 1


def test_the_api_refuses_a_listing_without_a_payout_wallet() -> None:
    donor = walletless_donor()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=donor).key}")
    response = client.post(
        "/api/v1/datasets",
        {
            "title": "Cohort",
            "description": "",
            "files": [str(ready_file(donor).pk)],
            "duo_codes": ["DUO:0000042"],
            "price": "1000",
            "access_days": 30,
            "review": "auto",
        },
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "payout_wallet_required" and "/profile/" in error["message"]


def test_a_donor_whose_wallet_was_unlinked_is_told_once_when_a_request_waits(
    mailoutbox, django_capture_on_commit_callbacks
) -> None:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    dataset = dataset_create(
        donor=donor,
        title="Exomes",
        description="",
        files=[ready_file(donor).pk],
        duo_codes=["DUO:0000042"],
        price="1000",
        access_days=30,
        review="committee",
    )
    WalletLink.objects.filter(user=donor).delete()  # unlinked after listing
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    payout_wallet(researcher)
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        statement="Research.",
        purpose_codes=[{"code": "DUO:0000042", "value": ""}],
        amount=dataset.price,
        state=AccessRequest.State.APPROVED,
        duo_match={"fits": True},
    )
    with django_capture_on_commit_callbacks(execute=True):
        sign_voucher(str(request.pk))
        sign_voucher(str(request.pk))  # the voucher is retried: the donor is told once
    told = Notification.objects.filter(user=donor, request=request)
    assert told.count() == 1 and "/profile/#wallet" in told.get().message
    assert not Notification.objects.filter(user=researcher, request=request).exists()
    assert [mail.to for mail in mailoutbox] == [[donor.email]]
    request.refresh_from_db()
    assert request.state == "approved" and "donor" in request.voucher_error
