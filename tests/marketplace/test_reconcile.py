"""Nothing is lost when the broker is away: sending a task fails softly, and the
reconciler sends again the work that waits in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from core.queue import enqueue
from genomics.models import GenomicFile
from marketplace import tasks
from marketplace.models import AccessRequest, Dataset, DatasetTier, Role
from marketplace.services.reconcile import work_reconcile
from tests.factories import ready_file

pytestmark = pytest.mark.django_db


class BrokerDown:
    name = "broken.task"

    def delay(self, *args: object) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_task_sent_while_the_broker_is_away_is_logged_not_raised(caplog) -> None:
    assert enqueue(BrokerDown(), "abc") is False
    assert "sent again later" in caplog.text


def test_a_submission_while_the_broker_is_away_still_succeeds(
    client_for, make_user, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setattr(tasks.sign_voucher, "delay", BrokerDown().delay)
    donor = make_user(Role.DONOR)
    dataset = Dataset.objects.create(
        donor=donor,
        title="t",
        price=10,
        access_days=5,
        review="auto",
        duo_codes=[{"code": "DUO:0000042", "value": ""}],
        duo_index=" DUO:0000042 ",
    )
    dataset.files.set([ready_file(donor)])
    client, _ = client_for(Role.RESEARCHER)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/access-requests",
            {
                "dataset": str(dataset.pk),
                "purpose_codes": ["DUO:0000042"],
                "statement": "s",
                "accept_terms": True,
            },
            format="json",
        )
    assert response.status_code == 201 and response.json()["state"] == "approved"


def test_the_reconciler_sends_again_what_waits(make_user, monkeypatch) -> None:
    sent: list[tuple[str, str]] = []
    for task in (
        tasks.sign_voucher,
        tasks.grant_access,
        tasks.refund_access,
        tasks.release_access,
        tasks.erase_donor_data,
        tasks.build_tier,
    ):
        monkeypatch.setattr(task, "delay", lambda pk, _n=task.name: sent.append((_n, pk)))
    from genomics import tasks as genomics_tasks

    monkeypatch.setattr(genomics_tasks.ingest_file, "delay", lambda pk: sent.append(("ingest", pk)))
    monkeypatch.setattr(
        genomics_tasks.recompress_file, "delay", lambda pk: sent.append(("recompress", pk))
    )
    donor = make_user(Role.DONOR)
    # One researcher per request: a researcher has one open request per dataset (issue 16 §7).
    dataset = Dataset.objects.create(
        donor=donor, title="t", price=10, access_days=5, duo_codes=[], duo_index=""
    )
    rows = {}
    for state in ("approved", "paid", "refunding", "payable", "granted"):
        rows[state] = AccessRequest.objects.create(
            dataset=dataset,
            researcher=make_user(Role.RESEARCHER),
            statement="s",
            amount=10,
            state=state,
        )
    fresh = AccessRequest.objects.create(
        dataset=dataset,
        researcher=make_user(Role.RESEARCHER),
        statement="s",
        amount=10,
        state="paid",
    )
    old = timezone.now() - timedelta(minutes=10)
    AccessRequest.objects.exclude(pk=fresh.pk).update(updated_at=old)
    waiting = ready_file(donor)  # its ingest went quiet: lost
    running = ready_file(donor)  # its ingest beat a moment ago
    GenomicFile.objects.filter(pk=waiting.pk).update(state="ingesting", updated_at=old)
    GenomicFile.objects.filter(pk=running.pk).update(state="ingesting", progress=0.4)
    # A region object being made is its tier's build, never an ingest (it has no header).
    sliced = ready_file(donor)
    GenomicFile.objects.filter(pk=sliced.pk).update(
        state="ingesting", updated_at=old, parent=waiting, regions_sha256="0" * 64
    )
    lost, building = (
        DatasetTier.objects.create(
            dataset=dataset, name=name, price=1, source="bed", regions=[], regions_sha256="0"
        )
        for name in ("lost", "building")
    )
    DatasetTier.objects.filter(pk__in=[lost.pk, building.pk]).update(created_at=old)
    DatasetTier.objects.filter(pk=building.pk).update(building_since=timezone.now())
    released = AccessRequest.objects.create(
        dataset=dataset,
        researcher=make_user(Role.RESEARCHER),
        statement="s",
        amount=10,
        state="granted",
    )
    AccessRequest.objects.filter(pk=released.pk).update(updated_at=old)
    # An erasure asked while the broker was away, and one already done.
    from marketplace.models import Erasure

    lost_erasure = Erasure.objects.create(donor=donor, file_ids=[])
    Erasure.objects.create(donor=donor, file_ids=[], state="done")
    Erasure.objects.update(updated_at=old)
    from ledger.models import OperatorTransaction

    OperatorTransaction.objects.create(
        chain_id=1,
        action="release",
        key=str(released.pk),
        to="0x",
        data="0x",
        sender="0x",
        nonce=0,
        gas_limit=1,
        max_fee_per_gas=1,
        max_priority_fee_per_gas=1,
        raw_tx="0x",
        tx_hash="0x",
    )

    # Storing a VCF bgzipped: asked while the broker was away, and one just asked.
    from genomics.models import Recompression

    lost_recompression = Recompression.objects.create(
        file=ready_file(donor, filename="lost.vcf"), requested_at=old
    )
    Recompression.objects.filter(pk=lost_recompression.pk).update(updated_at=old)
    Recompression.objects.create(file=ready_file(donor, filename="new.vcf"), requested_at=old)

    counts = work_reconcile(waiting_for_s=300)

    assert counts == {
        "sign_voucher": 1,
        "grant_access": 1,
        "refund_access": 1,
        "release_access": 1,
        "ingest_file": 1,
        "erase_donor_data": 1,
        "build_tier": 1,
        "recompress_file": 1,
    }
    assert sorted(sent) == sorted(
        [
            ("marketplace.tasks.sign_voucher", str(rows["approved"].pk)),
            ("marketplace.tasks.grant_access", str(rows["paid"].pk)),
            ("marketplace.tasks.refund_access", str(rows["refunding"].pk)),
            ("marketplace.tasks.release_access", str(rows["granted"].pk)),
            ("ingest", str(waiting.pk)),
            ("marketplace.tasks.erase_donor_data", str(lost_erasure.pk)),
            ("marketplace.tasks.build_tier", str(lost.pk)),
            ("recompress", str(lost_recompression.file_id)),
        ]
    )
