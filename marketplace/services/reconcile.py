"""Sending again the work that waits in the database but may have no task in the queue:
a task sent while the broker was away, or lost with a broker that kept nothing.

Every task is idempotent and checks the row's state first, so a second copy of a task
that is only slow does nothing. A file is re-sent for ingest only when its ingest has
not reported progress for the whole wait (a running ingest beats every few seconds), so
a long ingest is not started twice.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from core.queue import enqueue
from genomics.models import GenomicFile
from ledger.models import OperatorTransaction
from marketplace.models import AccessRequest, Erasure

State = AccessRequest.State


def work_reconcile(*, waiting_for_s: float) -> dict[str, int]:
    """Re-send the task of every row that has waited longer than `waiting_for_s`."""
    from genomics.tasks import ingest_file
    from marketplace import tasks

    cutoff = timezone.now() - timedelta(seconds=waiting_for_s)
    stale = AccessRequest.objects.filter(updated_at__lt=cutoff)
    plan = {
        "sign_voucher": (tasks.sign_voucher, stale.filter(state=State.APPROVED)),
        "grant_access": (
            tasks.grant_access,
            stale.filter(state__in=(State.PAID, State.DELIVERING), flagged=""),
        ),
        "refund_access": (tasks.refund_access, stale.filter(state=State.REFUNDING)),
        # Granted, but the worker stopped before it asked for the release.
        "release_access": (
            tasks.release_access,
            _release_not_asked(stale.filter(state=State.GRANTED)),
        ),
    }
    sent: dict[str, int] = {}
    for name, (task, rows) in plan.items():
        sent[name] = sum(enqueue(task, str(pk)) for pk in rows.values_list("pk", flat=True))
    # Region objects are made by their tier's build, never ingested: re-sent as the tier.
    files = GenomicFile.objects.filter(
        state=GenomicFile.State.INGESTING, updated_at__lt=cutoff, parent__isnull=True
    ).values_list("pk", flat=True)
    sent["ingest_file"] = sum(enqueue(ingest_file, str(pk)) for pk in files)
    # Storing a VCF bgzipped: asked but not begun, or an attempt gone silent (its worker
    # died); a running attempt beats far more often than the wait.
    from genomics.services.recompress import recompressions_waiting
    from genomics.tasks import recompress_file

    recompressions = recompressions_waiting(cutoff=cutoff).values_list("file_id", flat=True)
    sent["recompress_file"] = sum(enqueue(recompress_file, str(pk)) for pk in recompressions)
    erasures = Erasure.objects.filter(
        state=Erasure.State.REQUESTED, updated_at__lt=cutoff
    ).values_list("pk", flat=True)
    sent["erase_donor_data"] = sum(enqueue(tasks.erase_donor_data, str(pk)) for pk in erasures)
    from marketplace.services.tiers import tiers_waiting

    tiers = tiers_waiting(cutoff=cutoff).values_list("pk", flat=True)
    sent["build_tier"] = sum(enqueue(tasks.build_tier, str(pk)) for pk in tiers)
    return sent


def _release_not_asked(granted: QuerySet[AccessRequest]) -> QuerySet[AccessRequest]:
    """The granted requests without a release transaction. Keys are looked up for these
    requests only (not every release ever sent); compared as text, which the key is."""
    keys = [str(pk) for pk in granted.values_list("pk", flat=True)]
    asked = OperatorTransaction.objects.filter(action="release", key__in=keys)
    return granted.exclude(pk__in=list(asked.values_list("key", flat=True)))
