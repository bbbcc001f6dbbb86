"""Releasing one dataset's answer to one discovery query (the only way a Beacon answer
about a dataset leaves the system).

The rules (README "Disclosure control"), against the likelihood-ratio membership attack
(Shringarpure and Bustamante, AJHG 2015; rare alleles first, Raisaro et al. 2017), are
DisclosurePolicy.answer's:
- an allele far above the rare threshold (AF >= DISCLOSURE_RARE_AF and
  AC >= DISCLOSURE_RARE_MIN_AC, plus a margin of noise scales) is answered exactly and
  costs nothing: it says next to nothing about any one person;
- every other answer (absent alleles included) is a function of two noisy counts (AC plus
  discrete Laplace noise, OpenDP), drawn once per dataset and normalised query and stored:
  the first decides whether the query costs budget (near the rare threshold it may or may
  not, so neither the cost nor a refusal nor the `exact` flag says on which side of the
  threshold the true count lies), the second whether presence is said (rare and absent
  suppressed alike) and the noisy count;
- a charged query costs the caller one unit of budget, on the account and on the network
  prefix (the Sybil rule); the same query gets the same answer for everyone, so noise
  cannot be averaged away, and a caller's repeat costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from uuid import UUID

from disclosure.policy import DisclosurePolicy
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
