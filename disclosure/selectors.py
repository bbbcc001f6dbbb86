"""Reads of the privacy budget (the catalogue shows a researcher what is left)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from django.utils import timezone

from disclosure.models import BudgetCharge
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
    wanted = {str(d) for d in ids}
    since = timezone.now() - timedelta(seconds=policy.window_s)
    # {(holder, dataset id as text): (charges in the window, the oldest one's time)}
    spent: dict[tuple[str, str], tuple[int, datetime]] = {}
    for holder, charged_at, datasets in BudgetCharge.objects.filter(
        account__holder__in=caller.holders, charged_at__gt=since
    ).values_list("account__holder", "charged_at", "datasets"):
        for key in wanted.intersection(datasets):
            count, oldest = spent.get((holder, key), (0, charged_at))
            spent[holder, key] = (count + 1, min(oldest, charged_at))
    result: dict[UUID, BudgetStatus] = {}
    for dataset_id in ids:
        key = str(dataset_id)
        remaining_by_holder = {h: policy.budget_for(h) for h in caller.holders}
        renews_at: datetime | None = None
        for holder in caller.holders:
            if (holder, key) not in spent:
                continue
            count, oldest = spent[holder, key]
            remaining_by_holder[holder] -= count
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
