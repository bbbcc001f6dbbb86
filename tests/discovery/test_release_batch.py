"""disclosure.batch.release_answers gives, for many datasets at once, what
disclosure.services.release_answer gives one dataset at a time."""

from __future__ import annotations

import pytest

from disclosure.batch import release_answers
from disclosure.services import AlleleTally, BudgetExhausted, Caller, Released, release_answer
from tests.discovery.beacon_fixtures import listed_dataset

pytestmark = pytest.mark.django_db

COMMON = [AlleleTally(allele_count=100, allele_number=400)]
RARE = [AlleleTally(allele_count=3, allele_number=400)]


def _one_by_one(caller, key, asked):
    out: dict[object, object] = {}
    for dataset_id, (alleles, granularity) in asked.items():
        try:
            out[dataset_id] = release_answer(
                caller=caller,
                dataset_id=dataset_id,
                query_key=key,
                alleles=alleles,
                granularity=granularity,
            )
        except BudgetExhausted as exc:
            out[dataset_id] = type(exc)
    return out


def test_batch_and_single_releases_agree(make_user, settings) -> None:
    settings.DISCLOSURE_USER_BUDGET = 2
    settings.DISCLOSURE_NETWORK_BUDGET = 100
    settings.DISCLOSURE_NOISE_SCALE = 0
    donor = make_user()
    ids = [listed_dataset(donor, title=f"d{i}").pk for i in range(3)]
    batch_caller = Caller.for_address(user_id=1, address="192.0.2.1")
    single_caller = Caller.for_address(user_id=2, address="198.51.100.1")
    for key in ("q1", "q2", "q1", "q3"):
        asked = {
            ids[0]: (COMMON, "count"),
            ids[1]: (RARE if key != "q2" else [AlleleTally(30, 40)], "count"),
            ids[2]: ([], "boolean"),
        }
        batch = release_answers(caller=batch_caller, query_key=key, asked=asked)
        single = _one_by_one(single_caller, key + "-single", asked)
        assert {
            d: type(v) if isinstance(v, BudgetExhausted) else v for d, v in batch.items()
        } == single, key
    # q3 is the third distinct rare query on d2 (absent every time): refused; d1 was common
    # for q2 (not charged), so it still answers; d0 (common) answers exactly.
    assert isinstance(batch[ids[2]], BudgetExhausted)
    d1, d0 = batch[ids[1]], batch[ids[0]]
    assert isinstance(d1, Released) and d1.charged
    assert isinstance(d0, Released) and d0.count == 100
