"""Releasing one dataset's answer to one discovery query (the only way a Beacon answer
about a dataset leaves the system).

The rules (README "Disclosure control"), against the likelihood-ratio membership attack
(Shringarpure and Bustamante, AJHG 2015; rare alleles first, Raisaro et al. 2017):
- an allele that is not rare in the dataset (AF >= DISCLOSURE_RARE_AF and
  AC >= DISCLOSURE_RARE_MIN_AC) is answered exactly and costs nothing: it says next to
  nothing about any one person;
- a query that touches a rare or absent allele costs the caller one unit of budget, on the
  account and on the network prefix (the Sybil rule); its answer is the AC plus discrete
  Laplace noise (OpenDP), suppressed below DISCLOSURE_SUPPRESS_BELOW (absent and rare are
  not told apart), a released count rounded;
- each answer is drawn once per dataset and normalised query and stored: the same query
  gets the same answer for everyone, so noise cannot be averaged away, and a caller's
  repeat costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from disclosure.models import BudgetAccount, BudgetCharge, ReleasedAnswer
from disclosure.policy import DisclosurePolicy, noisy_count
from disclosure.types import (
    AlleleTally,
    BudgetExhausted,
    Caller,
    Granularity,
    Released,
)

__all__ = [
    "AlleleTally",
    "BudgetExhausted",
    "Caller",
    "Granularity",
    "Released",
    "release_answer",
]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _truth_fingerprint(
    alleles: Sequence[AlleleTally], granularity: Granularity, policy: DisclosurePolicy
) -> str:
    tallies = sorted((a.allele_count, a.allele_number) for a in alleles)
    return _sha256(json.dumps([granularity.value, policy.enabled, tallies]))


def _draw(
    *, alleles: Sequence[AlleleTally], granularity: Granularity, policy: DisclosurePolicy
) -> tuple[bool, bool, bool | None, int | None, bool]:
    """(rare, suppressed, exists, count, exact) for the true tallies."""
    true_ac = sum(a.allele_count for a in alleles)
    with_count = granularity is Granularity.COUNT
    if not policy.enabled:
        return False, False, true_ac > 0, true_ac if with_count else None, True
    if not policy.is_rare(alleles):
        return False, False, True, true_ac if with_count else None, True
    noisy = noisy_count(true_ac, scale=policy.noise_scale)
    if noisy < policy.suppress_below:
        return True, True, None, None, False
    step = policy.count_rounding
    # Rounded to the nearest step, never below the suppression floor.
    count = max(policy.suppress_below, step * round(noisy / step)) if with_count else None
    return True, False, True, count, False


def _answer_for(
    *,
    dataset_id: UUID,
    query_sha256: str,
    query_key: str,
    alleles: Sequence[AlleleTally],
    granularity: Granularity,
    policy: DisclosurePolicy,
) -> ReleasedAnswer:
    """The stored answer, drawn now if there is none yet (or the data changed)."""
    truth = _truth_fingerprint(alleles, granularity, policy)
    answer = (
        ReleasedAnswer.objects.select_for_update()
        .filter(dataset_id=dataset_id, query_sha256=query_sha256)
        .first()
    )
    if answer is not None and answer.truth_sha256 == truth:
        return answer
    rare, suppressed, exists, count, exact = _draw(
        alleles=alleles, granularity=granularity, policy=policy
    )
    fields = {
        "query_key": query_key,
        "granularity": granularity.value,
        "truth_sha256": truth,
        "rare": rare,
        "suppressed": suppressed,
        "exists": exists,
        "count": count,
        "exact": exact,
    }
    if answer is not None:
        for name, value in fields.items():
            setattr(answer, name, value)
        answer.save()
        return answer
    # Two first askers at once: one insert wins, both serve the winner's draw.
    ReleasedAnswer.objects.bulk_create(
        [ReleasedAnswer(dataset_id=dataset_id, query_sha256=query_sha256, **fields)],
        ignore_conflicts=True,
    )
    return ReleasedAnswer.objects.get(dataset_id=dataset_id, query_sha256=query_sha256)


def _charge(
    *, caller: Caller, dataset_id: UUID, query_sha256: str, policy: DisclosurePolicy
) -> bool:
    """Charge one rare query to each of the caller's holders that has not paid for it yet;
    raise BudgetExhausted (charging nobody) if any such holder has no budget left.
    Returns whether anything was charged."""
    now = timezone.now()
    since = now - timedelta(seconds=policy.window_s)
    BudgetAccount.objects.bulk_create(
        [BudgetAccount(holder=h, dataset_id=dataset_id) for h in caller.holders],
        ignore_conflicts=True,
    )
    # Locked in a fixed order (holder text) so two callers sharing a prefix cannot deadlock.
    accounts = list(
        BudgetAccount.objects.select_for_update()
        .filter(dataset_id=dataset_id, holder__in=caller.holders)
        .order_by("holder")
    )
    paid = set(
        BudgetCharge.objects.filter(account__in=accounts, query_sha256=query_sha256).values_list(
            "account_id", flat=True
        )
    )
    due = [a for a in accounts if a.pk not in paid]
    for account in due:
        window = BudgetCharge.objects.filter(account=account, charged_at__gt=since)
        if window.count() >= policy.budget_for(account.holder):
            oldest = window.aggregate(oldest=Min("charged_at"))["oldest"]
            renews_at = oldest + timedelta(seconds=policy.window_s) if oldest else None
            kind = "account" if account.holder.startswith("user:") else "network"
            raise BudgetExhausted(
                f"The {kind}'s budget of rare-allele queries on this dataset is spent "
                f"until {renews_at.isoformat() if renews_at else 'later'}.",
                holder=account.holder,
                renews_at=renews_at,
            )
    BudgetCharge.objects.bulk_create(
        [BudgetCharge(account=a, query_sha256=query_sha256, charged_at=now) for a in due]
    )
    return bool(due)


def release_answer(
    *,
    caller: Caller,
    dataset_id: UUID,
    query_key: str,
    alleles: Sequence[AlleleTally],
    granularity: Granularity | str = Granularity.BOOLEAN,
) -> Released:
    """What dataset `dataset_id` may answer `caller` for one normalised query.

    `query_key`: the normalised query, identical for queries that mean the same (e.g.
    "GRCh38:17:43044294:A>G" for a sequence query, "GRCh38:17:43044000-43045000:SNP" for a
    range); it keys the stored answer, so two spellings of one query must map to one key.
    `alleles`: the alternate alleles of this dataset that the query matched, with AC and AN
    from the variant index (empty when nothing matched). `granularity`: the donor's choice
    for this dataset ("boolean" or "count").

    Returns a `Released` (suppressed, or exists/count, and whether exact; see its doc).
    Raises `BudgetExhausted` (HTTP 429) when the query touches a rare or absent allele, the
    caller has not asked it before, and the account's or the network prefix's budget on this
    dataset is spent for the window; nothing is released or charged then.
    """
    policy = DisclosurePolicy.current()
    granularity = Granularity(granularity)
    query_sha256 = _sha256(query_key)
    if not (policy.enabled and policy.is_rare(alleles)):
        # Exact answers are a function of the index: nothing to store or to charge.
        _, suppressed, exists, count, exact = _draw(
            alleles=alleles, granularity=granularity, policy=policy
        )
        return Released(
            suppressed=suppressed, exists=exists, count=count, exact=exact, charged=False
        )
    with transaction.atomic():
        charged = _charge(
            caller=caller, dataset_id=dataset_id, query_sha256=query_sha256, policy=policy
        )
        answer = _answer_for(
            dataset_id=dataset_id,
            query_sha256=query_sha256,
            query_key=query_key,
            alleles=alleles,
            granularity=granularity,
            policy=policy,
        )
    return Released(
        suppressed=answer.suppressed,
        exists=answer.exists,
        count=answer.count if granularity is Granularity.COUNT else None,
        exact=answer.exact,
        charged=charged,
    )
