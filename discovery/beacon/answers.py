"""What the Beacon answers about each dataset: every per-dataset answer leaves through
`released_answers`, the one call of disclosure.services.release_answer (README
"Disclosure control"): budget, suppression of rare alleles, stable noise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from disclosure.services import (
    AlleleTally,
    BudgetExhausted,
    Caller,
    Released,
    release_answer,
)
from discovery.beacon.query import VariantQuery
from discovery.beacon.selectors import BeaconDataset, MatchedAllele, matching_alleles


@dataclass(frozen=True)
class DatasetAnswer:
    dataset: BeaconDataset
    # None when the caller's budget on this dataset is spent (nothing released).
    released: Released | None
    # What the released count counts (alleles); None at boolean granularity.
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
    key = query.key()
    answers = []
    for dataset in datasets:
        tallies = [
            AlleleTally(allele_count=m.allele_count, allele_number=m.allele_number)
            for m in matches.get(dataset.id, [])
        ]
        try:
            released = release_answer(
                caller=caller,
                dataset_id=dataset.id,
                query_key=key,
                alleles=tallies,
                granularity=dataset.granularity,
            )
        except BudgetExhausted as exhausted:
            answers.append(DatasetAnswer(dataset, None, str(exhausted)))
            continue
        answers.append(DatasetAnswer(dataset, released))
    return answers
