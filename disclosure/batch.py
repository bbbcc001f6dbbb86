"""`release_answer` for many datasets at once: the same rules (disclosure.services), in a
handful of queries whatever the number of datasets, so that a Beacon query over 1,000
datasets answers in milliseconds (bench/beacon.py). Written by the `beacon` branch for
its one call site (discovery.beacon.answers); `services.release_answer` is this for one
dataset, so the budget and the stored answers have one implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from uuid import UUID

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from disclosure.models import BudgetAccount, BudgetCharge, ReleasedAnswer
from disclosure.policy import DisclosurePolicy
from disclosure.services import _draw, _sha256, _truth_fingerprint
from disclosure.types import AlleleTally, BudgetExhausted, Caller, Granularity, Released

Asked = tuple[Sequence[AlleleTally], Granularity | str]


@lru_cache(maxsize=8)
def _vector_laplace(scale: float):  # type: ignore[no-untyped-def]  # an OpenDP Measurement
    import opendp.prelude as dp

    dp.enable_features("contrib")  # as disclosure.policy: the discrete Laplace mechanism
    return dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=int, nan=False)), dp.l1_distance(T=int), scale=scale
    )


def _noisy_counts(true_counts: list[int], *, scale: float) -> list[int]:
    """policy.noisy_count for each count, in one call of OpenDP's sampler (the same
    discrete Laplace of `scale` on each coordinate, drawn independently; one call
    instead of one per dataset is what makes 1,000 datasets affordable)."""
    if scale <= 0 or not true_counts:
        return list(true_counts)
    return [int(v) for v in _vector_laplace(float(scale))([int(c) for c in true_counts])]


def _rare_draw(
    noisy: int, granularity: Granularity, policy: DisclosurePolicy
) -> tuple[bool, bool, bool | None, int | None, bool]:
    """services._draw's rare branch, given the noisy AC."""
    if noisy < policy.suppress_below:
        return True, True, None, None, False
    step = policy.count_rounding
    with_count = granularity is Granularity.COUNT
    count = max(policy.suppress_below, step * round(noisy / step)) if with_count else None
    return True, False, True, count, False


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
        to_draw = []
        for dataset_id in released_ids:
            alleles, level = rare[dataset_id]
            truth = _truth_fingerprint(alleles, level, policy)
            answer = stored.get(dataset_id)
            if answer is None or answer.truth_sha256 != truth:
                to_draw.append((dataset_id, alleles, level, truth, answer))
        noisy_counts = _noisy_counts(
            [sum(a.allele_count for a in d[1]) for d in to_draw], scale=policy.noise_scale
        )
        for (dataset_id, _, level, truth, answer), noisy in zip(to_draw, noisy_counts, strict=True):
            was_rare, suppressed, exists, count, exact = _rare_draw(noisy, level, policy)
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
