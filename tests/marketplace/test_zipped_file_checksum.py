"""A file the donor uploaded as a ZIP (a 23andMe download) publishes the checksum of the
file inside it, so the researcher's page tells them to check it with `unzip -p`."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest
from django.utils import timezone

from marketplace.models import AccessRequest, Role, User
from marketplace.services.datasets import dataset_create
from tests.factories import UserFactory, ready_file
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("container", "command"),
    [("zip", "unzip -p genome.zip | sha256sum"), ("", "sha256sum genome.zip")],
)
def test_the_researcher_is_told_how_to_check_the_published_checksum(
    container: str, command: str
) -> None:
    donor = cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    researcher = cast(User, UserFactory(role=Role.RESEARCHER))
    stored = ready_file(donor, filename="genome.zip", fmt="23andMe")
    if container:
        stored.metadata = stored.metadata | {"container": container}
        stored.save(update_fields=["metadata"])
    dataset = dataset_create(
        donor=donor,
        title="One genotype file",
        description="A 23andMe download.",
        files=[stored.pk],
        duo_codes=["DUO:0000042"],
        price=str(10**18),
        access_days=30,
        review="committee",
    )
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        purpose_codes=[{"code": "DUO:0000042", "value": ""}],
        statement="Genotype study.",
        amount=dataset.price,
        duo_match={"fits": True, "reasons": [], "committee_checks": []},
    )
    AccessRequest.objects.filter(pk=request.pk).update(
        state=AccessRequest.State.GRANTED, expires_at=timezone.now() + timedelta(days=30)
    )
    page = logged_in(researcher).get(f"/requests/{request.pk}/status").content.decode()
    assert f"{command}   # {stored.plaintext_sha256}" in page
