"""What the Beacon answers about each dataset: every per-dataset answer leaves through
`released_answers`, the one call into the disclosure control (README "Disclosure
control": budget, suppression of rare alleles, stable noise), made once per query for
all datasets (disclosure.batch.release_answers: release_answer's rules in a few queries)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

from disclosure.batch import release_answers
from disclosure.types import AlleleTally, BudgetExhausted, Caller, Released
from discovery.beacon.query import VariantQuery
from discovery.beacon.selectors import BeaconDataset, MatchedAllele, matching_alleles


class DatasetAnswer(NamedTuple):  # a NamedTuple: made 1,000 times a query, and cheaply
    dataset: BeaconDataset
    # None when the caller's budget on this dataset is spent (nothing released).
    released: Released | None
    # Why nothing is released (the budget's message), when `released` is None.
    refusal: str = ""


def released_answers(
    *, caller: Caller, query: VariantQuery, datasets: Sequence[BeaconDataset]
) -> list[DatasetAnswer]:
    """One answer per dataset, absent ones included: an absent allele is asked of the
    disclosure control like a rare one (it answers both alike, so that a caller cannot
    tell them apart, by the answer or by what it costs)."""
    matches: dict[UUID, list[MatchedAllele]] = matching_alleles(
        query=query, dataset_ids=[d.id for d in datasets]
    )
    tallies = {
        dataset_id: [AlleleTally(m.allele_count, m.allele_number) for m in matched]
        for dataset_id, matched in matches.items()
    }
    asked = {d.id: (tallies.get(d.id, ()), d.granularity) for d in datasets}
    # The one call: disclosure.services.release_answer's rules, for all datasets at once.
    released = release_answers(caller=caller, query_key=query.key(), asked=asked)
    return [
        DatasetAnswer(dataset, None, str(outcome))
        if isinstance(outcome := released[dataset.id], BudgetExhausted)
        else DatasetAnswer(dataset, outcome)
        for dataset in datasets
    ]
