"""Sending again the work that waits in the database but may have no task in the queue:
a task sent while the broker was away, or lost with a broker that kept nothing.

Every task is idempotent and checks the row's state first, so a second copy of a task
that is only slow does nothing. Files are re-sent for ingest only if their ingest never
reported progress, so a long ingest is not started twice.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from core.queue import enqueue
from genomics.models import GenomicFile
from marketplace.models import AccessRequest

State = AccessRequest.State


def work_reconcile(*, waiting_for_s: float) -> dict[str, int]:
    """Re-send the task of every row that has waited longer than `waiting_for_s`."""
    from genomics.tasks import ingest_file
    from marketplace import tasks

    cutoff = timezone.now() - timedelta(seconds=waiting_for_s)
    stale = AccessRequest.objects.filter(updated_at__lt=cutoff)
    plan = {
        "sign_voucher": (tasks.sign_voucher, stale.filter(state=State.APPROVED)),
        "grant_access": (tasks.grant_access, stale.filter(state=State.PAID)),
        "refund_access": (tasks.refund_access, stale.filter(state=State.REFUNDING)),
    }
    sent: dict[str, int] = {}
    for name, (task, rows) in plan.items():
        sent[name] = sum(enqueue(task, str(pk)) for pk in rows.values_list("pk", flat=True))
    files = GenomicFile.objects.filter(
        state=GenomicFile.State.INGESTING, updated_at__lt=cutoff, progress=0
    ).values_list("pk", flat=True)
    sent["ingest_file"] = sum(enqueue(ingest_file, str(pk)) for pk in files)
    return sent
