"""The donor's listing pages say what the Beacon may reveal, with the settings in force."""

from __future__ import annotations

from typing import cast

import pytest
from django.test import Client, override_settings

from marketplace.models import Role, User
from marketplace.services.datasets import dataset_create
from tests.factories import UserFactory, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


@override_settings(DISCLOSURE_RARE_MIN_AC=23, DISCLOSURE_USER_BUDGET=17)
def test_the_donor_sees_what_a_beacon_may_reveal_per_granularity() -> None:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    stored = ready_file(donor)
    dataset = dataset_create(
        donor=donor,
        title="Exomes",
        description="",
        files=[stored.pk],
        duo_codes=["DUO:0000042"],
        price="1",
        access_days=30,
        review="committee",
    )
    client = logged_in(donor)
    for page in (f"/datasets/{dataset.pk}/", f"/datasets/{dataset.pk}/edit/", "/datasets/new/"):
        html = " ".join(client.get(page).content.decode().split())
        assert "data-beacon-disclosure" in html, page
        assert "Yes/no answers:" in html and "Count answers:" in html
        assert "at least 23 copies" in html and "at most 17 questions" in html
        assert "from 62 copies" in html  # 23 + 3 + 10 noise scales of 3, rounded up
    # A researcher's view of the dataset does not carry the donor's notice.
    assert "data-beacon-disclosure" not in Client().get(f"/datasets/{dataset.pk}/").content.decode()
