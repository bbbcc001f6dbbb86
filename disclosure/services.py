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
from uuid import UUID

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
    # One implementation of the rules, shared with the Beacon's many-dataset call.
    from disclosure.batch import release_answers

    outcome = release_answers(
        caller=caller, query_key=query_key, asked={dataset_id: (alleles, granularity)}
    )[dataset_id]
    if isinstance(outcome, BudgetExhausted):
        raise outcome
    return outcome
