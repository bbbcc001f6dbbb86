"""`release_answer` for many datasets at once: the same rules (disclosure.services), in a
handful of queries whatever the number of datasets, so that a Beacon query over 1,000
datasets answers in milliseconds (bench/beacon.py). Written by the `beacon` branch for
its one call site (discovery.beacon.answers); `services.release_answer` is this for one
dataset, so the budget and the stored answers have one implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from disclosure.models import BudgetAccount, BudgetCharge, ReleasedAnswer
from disclosure.policy import DisclosurePolicy
from disclosure.services import _draw, _sha256, _truth_fingerprint
from disclosure.types import AlleleTally, BudgetExhausted, Caller, Granularity, Released

Asked = tuple[Sequence[AlleleTally], Granularity | str]


def _exhausted(holder: str, oldest: datetime | None, window_s: int) -> BudgetExhausted:
    renews_at = oldest + timedelta(seconds=window_s) if oldest else None
    kind = "account" if holder.startswith("user:") else "network"
    return BudgetExhausted(
        f"The {kind}'s budget of rare-allele queries on this dataset is spent until "
        f"{renews_at.isoformat() if renews_at else 'later'}.",
        holder=holder,
        renews_at=renews_at,
    )


def release_answers(
    *, caller: Caller, query_key: str, asked: Mapping[UUID, Asked]
) -> dict[UUID, Released | BudgetExhausted]:
    """For each dataset id in `asked` (its matched alleles, empty when none, and its
    granularity): what `release_answer` would give, or the BudgetExhausted it would
    raise (nothing charged or released for that dataset then). Same budget, suppression,
    noise and stored answers; one transaction."""
    policy = DisclosurePolicy.current()
    query_sha256 = _sha256(query_key)
    results: dict[UUID, Released | BudgetExhausted] = {}
    rare: dict[UUID, tuple[Sequence[AlleleTally], Granularity]] = {}
    for dataset_id, (alleles, granularity) in asked.items():
        level = Granularity(granularity)
        if policy.enabled and policy.is_rare(alleles):
            rare[dataset_id] = (alleles, level)
            continue
        _, suppressed, exists, count, exact = _draw(
            alleles=alleles, granularity=level, policy=policy
        )
        results[dataset_id] = Released(
            suppressed=suppressed, exists=exists, count=count, exact=exact, charged=False
        )
    if not rare:
        return results
    now = timezone.now()
    since = now - timedelta(seconds=policy.window_s)
    ids = sorted(rare, key=str)
    with transaction.atomic():
        known = set(
            BudgetAccount.objects.filter(holder__in=caller.holders, dataset_id__in=ids).values_list(
                "holder", "dataset_id"
            )
        )
        missing = [
            BudgetAccount(holder=h, dataset_id=d)
            for d in ids
            for h in caller.holders
            if (h, d) not in known
        ]
        if missing:
            BudgetAccount.objects.bulk_create(missing, ignore_conflicts=True)
        # Locked in a fixed order (holder, dataset), as release_answer locks them.
        accounts = list(
            BudgetAccount.objects.select_for_update()
            .filter(holder__in=caller.holders, dataset_id__in=ids)
            .order_by("holder", "dataset_id")
            .values_list("pk", "holder", "dataset_id")
        )
        paid = set(
            BudgetCharge.objects.filter(
                account_id__in=[a[0] for a in accounts], query_sha256=query_sha256
            ).values_list("account_id", flat=True)
        )
        due = [a for a in accounts if a[0] not in paid]
        window = {
            row["account"]: (row["spent"], row["oldest"])
            for row in BudgetCharge.objects.filter(
                account_id__in=[a[0] for a in due], charged_at__gt=since
            )
            .values("account")
            .annotate(spent=Count("id"), oldest=Min("charged_at"))
        }
        refused: dict[UUID, BudgetExhausted] = {}
        charges: dict[UUID, list[int]] = {d: [] for d in ids}
        for pk, holder, dataset_id in due:
            spent, oldest = window.get(pk, (0, None))
            if spent >= policy.budget_for(holder):
                refused.setdefault(dataset_id, _exhausted(holder, oldest, policy.window_s))
            charges[dataset_id].append(pk)
        BudgetCharge.objects.bulk_create(
            [
                BudgetCharge(account_id=pk, query_sha256=query_sha256, charged_at=now)
                for dataset_id, pks in charges.items()
                if dataset_id not in refused
                for pk in pks
            ]
        )
        released_ids = [d for d in ids if d not in refused]
        stored = {
            a.dataset_id: a
            for a in ReleasedAnswer.objects.select_for_update().filter(
                dataset_id__in=released_ids, query_sha256=query_sha256
            )
        }
        fresh: list[ReleasedAnswer] = []
        redrawn: list[ReleasedAnswer] = []
        for dataset_id in released_ids:
            alleles, level = rare[dataset_id]
            truth = _truth_fingerprint(alleles, level, policy)
            answer = stored.get(dataset_id)
            if answer is not None and answer.truth_sha256 == truth:
                continue
            was_rare, suppressed, exists, count, exact = _draw(
                alleles=alleles, granularity=level, policy=policy
            )
            drawn = answer or ReleasedAnswer(dataset_id=dataset_id, query_sha256=query_sha256)
            drawn.query_key, drawn.granularity, drawn.truth_sha256 = query_key, level.value, truth
            drawn.rare, drawn.suppressed, drawn.exists = was_rare, suppressed, exists
            drawn.count, drawn.exact = count, exact
            (redrawn if answer is not None else fresh).append(drawn)
            stored[dataset_id] = drawn
        if redrawn:
            ReleasedAnswer.objects.bulk_update(
                redrawn,
                ["query_key", "granularity", "truth_sha256", "rare", "suppressed", "exists",
                 "count", "exact", "updated_at"],
            )  # fmt: skip
        if fresh:
            # Two first askers at once: one insert wins, both serve the winner's draw.
            ReleasedAnswer.objects.bulk_create(fresh, ignore_conflicts=True)
            stored.update(
                (a.dataset_id, a)
                for a in ReleasedAnswer.objects.filter(
                    dataset_id__in=[a.dataset_id for a in fresh], query_sha256=query_sha256
                )
            )
    for dataset_id in ids:
        if dataset_id in refused:
            results[dataset_id] = refused[dataset_id]
            continue
        answer = stored[dataset_id]
        level = rare[dataset_id][1]
        results[dataset_id] = Released(
            suppressed=answer.suppressed,
            exists=answer.exists,
            count=answer.count if level is Granularity.COUNT else None,
            exact=answer.exact,
            charged=bool(charges[dataset_id]),
        )
    return results
