"""The one code path of a variant search, for the Beacon API and the catalogue alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from disclosure.types import Caller
from discovery.beacon import query as beacon_query
from discovery.beacon.answers import DatasetAnswer, released_answers
from discovery.beacon.selectors import BeaconDataset, beacon_datasets


@dataclass(frozen=True)
class VariantSearch:
    query: beacon_query.VariantQuery
    datasets: list[BeaconDataset]
    answers: list[DatasetAnswer]


def variant_search(
    *, caller: Caller, parameters: Mapping[str, object], filters: Sequence[str] = ()
) -> VariantSearch:
    """Parse a g_variants query, find the Beacon's datasets that the filtering terms let
    in, and release each dataset's answer through the disclosure control. Raises
    BeaconQueryError for a query or filter we cannot answer."""
    parsed = beacon_query.parse(parameters)
    datasets = beacon_datasets(filters=filters)
    answers = released_answers(caller=caller, query=parsed, datasets=datasets)
    return VariantSearch(parsed, datasets, answers)
