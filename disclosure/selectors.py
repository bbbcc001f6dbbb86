"""Reads of the privacy budget (the catalogue shows a researcher what is left)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID

from django.db.models import Count, Min, Q
from django.utils import timezone

from disclosure.models import BudgetAccount
from disclosure.policy import DisclosurePolicy
from disclosure.types import BudgetStatus, Caller


def budget_remaining(*, caller: Caller, dataset_id: UUID) -> BudgetStatus:
    """The caller's rare-allele query budget on one dataset in the current window (the
    tighter of the account's and the network prefix's; see `BudgetStatus`)."""
    return budget_remaining_many(caller=caller, dataset_ids=[dataset_id])[dataset_id]


def budget_remaining_many(
    *, caller: Caller, dataset_ids: Iterable[UUID]
) -> dict[UUID, BudgetStatus]:
    """`budget_remaining` for several datasets in one query: {dataset_id: BudgetStatus}."""
    policy = DisclosurePolicy.current()
    ids = list(dataset_ids)
    since = timezone.now() - timedelta(seconds=policy.window_s)
    window = Q(charges__charged_at__gt=since)
    rows = (
        BudgetAccount.objects.filter(dataset_id__in=ids, holder__in=caller.holders)
        .annotate(
            spent=Count("charges", filter=window), oldest=Min("charges__charged_at", filter=window)
        )
        .values("dataset_id", "holder", "spent", "oldest")
    )
    by_dataset: dict[UUID, list[dict[str, object]]] = {i: [] for i in ids}
    for row in rows:
        by_dataset[row["dataset_id"]].append(row)
    result: dict[UUID, BudgetStatus] = {}
    for dataset_id in ids:
        remaining_by_holder = {h: policy.budget_for(h) for h in caller.holders}
        renews_at: datetime | None = None
        for row in by_dataset[dataset_id]:
            holder = str(row["holder"])
            remaining_by_holder[holder] -= cast(int, row["spent"])
            oldest = cast(datetime | None, row["oldest"])
            if oldest is not None:
                at = oldest + timedelta(seconds=policy.window_s)
                renews_at = at if renews_at is None or at < renews_at else renews_at
        tightest = min(remaining_by_holder, key=lambda h: remaining_by_holder[h])
        limit = policy.budget_for(tightest)
        remaining = max(0, remaining_by_holder[tightest])
        result[dataset_id] = BudgetStatus(
            limit=limit,
            spent=limit - remaining_by_holder[tightest],
            remaining=remaining if policy.enabled else limit,
            window_s=policy.window_s,
            renews_at=renews_at,
        )
    return result
