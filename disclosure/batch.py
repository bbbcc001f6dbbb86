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
from disclosure.services import _sha256, _truth_fingerprint
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


def _exhausted(holder: str, oldest: datetime | None, window_s: int) -> BudgetExhausted:
    renews_at = oldest + timedelta(seconds=window_s) if oldest else None
    kind = "account" if holder.startswith("user:") else "network"
    return BudgetExhausted(
        f"The {kind}'s budget of rare-allele queries on this dataset is spent until "
        f"{renews_at.isoformat() if renews_at else 'later'}.",
        holder=holder,
        renews_at=renews_at,
    )


def _tally(alleles: Sequence[AlleleTally]) -> tuple[int, int]:
    """(AC summed over the matched alleles, AN: the largest of theirs; 0 when none)."""
    return sum(a.allele_count for a in alleles), max((a.allele_number for a in alleles), default=0)


def release_answers(
    *, caller: Caller, query_key: str, asked: Mapping[UUID, Asked]
) -> dict[UUID, Released | BudgetExhausted]:
    """For each dataset id in `asked` (its matched alleles, empty when none, and its
    granularity): what `release_answer` would give, or the BudgetExhausted it would
    raise (nothing charged or released for that dataset then). Same budget, noise and
    stored answers; one transaction.

    The rules are DisclosurePolicy.answer's: each dataset's answer to a normalised query
    comes from two noisy counts drawn once and stored (ReleasedAnswer), unless its allele
    count is far above the rare threshold (then exact, free, nothing stored); a stored
    answer whose gate draw fell below the gate costs one unit of budget per holder the
    first time each holder gets it."""
    policy = DisclosurePolicy.current()
    query_sha256 = _sha256(query_key)
    results: dict[UUID, Released | BudgetExhausted] = {}
    drawn: dict[UUID, tuple[Sequence[AlleleTally], Granularity]] = {}
    for dataset_id, (alleles, granularity) in asked.items():
        level = Granularity(granularity)
        true_ac, allele_number = _tally(alleles)
        if policy.enabled and true_ac < policy.undrawn_from(allele_number):
            drawn[dataset_id] = (alleles, level)
            continue
        _, suppressed, exists, count, exact = policy.answer(
            true_ac=true_ac,
            allele_number=allele_number,
            draws=None,
            with_count=level is Granularity.COUNT,
        )
        results[dataset_id] = Released(
            suppressed=suppressed, exists=exists, count=count, exact=exact, charged=False
        )
    if not drawn:
        return results
    now = timezone.now()
    since = now - timedelta(seconds=policy.window_s)
    ids = sorted(drawn, key=str)
    with transaction.atomic():
        stored = _stored_answers(ids, drawn, query_key, query_sha256, policy)
        rare = [d for d in ids if stored[d].rare]
        known = set(
            BudgetAccount.objects.filter(
                holder__in=caller.holders, dataset_id__in=rare
            ).values_list("holder", "dataset_id")
        )
        missing = [
            BudgetAccount(holder=h, dataset_id=d)
            for d in rare
            for h in caller.holders
            if (h, d) not in known
        ]
        if missing:
            BudgetAccount.objects.bulk_create(missing, ignore_conflicts=True)
        # Locked in a fixed order (holder, dataset), so concurrent queries cannot overspend
        # and cannot deadlock.
        accounts = list(
            BudgetAccount.objects.select_for_update()
            .filter(holder__in=caller.holders, dataset_id__in=rare)
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
    for dataset_id in ids:
        if dataset_id in refused:
            results[dataset_id] = refused[dataset_id]
            continue
        answer = stored[dataset_id]
        level = drawn[dataset_id][1]
        results[dataset_id] = Released(
            suppressed=answer.suppressed,
            exists=answer.exists,
            count=answer.count if level is Granularity.COUNT else None,
            exact=answer.exact,
            charged=bool(charges[dataset_id]),
        )
    return results


def _stored_answers(
    ids: list[UUID],
    drawn: Mapping[UUID, tuple[Sequence[AlleleTally], Granularity]],
    query_key: str,
    query_sha256: str,
    policy: DisclosurePolicy,
) -> dict[UUID, ReleasedAnswer]:
    """Each dataset's stored answer to the query, drawn now where none is stored yet or
    the truth it was drawn from changed (a file added). Draws are the query's, not the
    caller's: they are stored before any budget is decided, so a refused caller changes
    nothing a later caller gets. Within the caller's transaction."""
    stored = {
        a.dataset_id: a
        for a in ReleasedAnswer.objects.select_for_update().filter(
            dataset_id__in=ids, query_sha256=query_sha256
        )
    }
    fresh: list[ReleasedAnswer] = []
    redrawn: list[ReleasedAnswer] = []
    to_draw = []
    for dataset_id in ids:
        alleles, level = drawn[dataset_id]
        truth = _truth_fingerprint(alleles, level, policy)
        answer = stored.get(dataset_id)
        if answer is None or answer.truth_sha256 != truth:
            to_draw.append((dataset_id, alleles, level, truth, answer))
    # Two independent draws per dataset (gate, answer), in one call of OpenDP's sampler.
    noisy = _noisy_counts(
        [_tally(d[1])[0] for d in to_draw for _ in range(2)], scale=policy.noise_scale
    )
    for index, (dataset_id, alleles, level, truth, answer) in enumerate(to_draw):
        true_ac, allele_number = _tally(alleles)
        charged, suppressed, exists, count, exact = policy.answer(
            true_ac=true_ac,
            allele_number=allele_number,
            draws=(noisy[2 * index], noisy[2 * index + 1]),
            with_count=level is Granularity.COUNT,
        )
        row = answer or ReleasedAnswer(dataset_id=dataset_id, query_sha256=query_sha256)
        row.query_key, row.granularity, row.truth_sha256 = query_key, level.value, truth
        row.rare, row.suppressed, row.exists = charged, suppressed, exists
        row.count, row.exact = count, exact
        (redrawn if answer is not None else fresh).append(row)
        stored[dataset_id] = row
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
    return stored
