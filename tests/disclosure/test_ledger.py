"""How the disclosure control stores what it decides (disclosure.batch): a query over many
datasets writes one budget charge per holder, and stored answers stay the first draw when
two transactions draw at once."""

from __future__ import annotations

from datetime import timedelta
from typing import cast
from uuid import UUID

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from disclosure import batch
from disclosure.batch import release_answers
from disclosure.models import BudgetAccount, BudgetCharge, ReleasedAnswer
from disclosure.selectors import budget_remaining_many
from disclosure.services import _sha256, _truth_fingerprint
from disclosure.types import AlleleTally, BudgetExhausted, Caller, Granularity, Released
from marketplace.models import Dataset, Role, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RARE = [AlleleTally(allele_count=3, allele_number=400)]


@pytest.fixture
def datasets() -> list[UUID]:
    donor = cast(User, UserFactory(role=Role.DONOR))
    return [
        Dataset.objects.create(
            donor=donor, title=f"Cohort {i}", price=1000, access_days=30, duo_codes=[]
        ).pk
        for i in range(12)
    ]


def _stale_first_read(monkeypatch: pytest.MonkeyPatch, stale: dict[str, batch._Stored]) -> None:
    """The next read of the stored answers sees `stale` (what a transaction that read
    before another one committed would see); later reads see the database."""
    real = batch._stored
    reads = {"n": 0}

    def read(query_sha256: str) -> dict[str, batch._Stored]:
        reads["n"] += 1
        return dict(stale) if reads["n"] == 1 else real(query_sha256)

    monkeypatch.setattr(batch, "_stored", read)


def test_a_query_over_many_datasets_writes_one_charge_per_holder(datasets, settings) -> None:
    settings.DISCLOSURE_NOISE_SCALE = 0  # absent: always charged, always suppressed
    settings.DISCLOSURE_USER_BUDGET = settings.DISCLOSURE_NETWORK_BUDGET = 2
    caller = Caller.for_address(user_id=7, address="192.0.2.1")
    for key in ("q1", "q2"):
        released = release_answers(
            caller=caller, query_key=key, asked={d: ([], "boolean") for d in datasets}
        )
        assert all(isinstance(r, Released) and r.charged for r in released.values())
    # One account per holder, one charge per holder and query, whatever the datasets.
    assert BudgetAccount.objects.count() == 2
    assert BudgetCharge.objects.count() == 4
    assert {len(c.datasets) for c in BudgetCharge.objects.all()} == {len(datasets)}
    # The rules hold per dataset: a repeat is free, a third distinct query is refused...
    with CaptureQueriesContext(connection) as repeat:
        again = release_answers(
            caller=caller, query_key="q1", asked={d: ([], "boolean") for d in datasets}
        )
    assert not any(cast(Released, r).charged for r in again.values())
    # ... and reads only: nothing locked, nothing written.
    assert not [q["sql"] for q in repeat.captured_queries if "UPDATE" in q["sql"]]
    assert not [q["sql"] for q in repeat.captured_queries if "INSERT" in q["sql"]]
    third = release_answers(
        caller=caller, query_key="q3", asked={d: ([], "boolean") for d in datasets[:3]}
    )
    assert all(isinstance(r, BudgetExhausted) for r in third.values())
    # Both holders are spent: the network's refusal is told (holders in order), renewing
    # when its oldest charge in the window leaves it.
    oldest = BudgetCharge.objects.filter(account__holder="net:192.0.2.0/24").earliest("charged_at")
    window = timedelta(seconds=settings.DISCLOSURE_BUDGET_WINDOW_S)
    for refusal in third.values():
        assert isinstance(refusal, BudgetExhausted)
        assert (refusal.holder, refusal.renews_at) == (
            "net:192.0.2.0/24",
            oldest.charged_at + window,
        )
    # ... on those datasets only; the budget says so per dataset.
    status = budget_remaining_many(caller=caller, dataset_ids=datasets[:1])
    assert (status[datasets[0]].spent, status[datasets[0]].remaining) == (2, 0)
    assert BudgetCharge.objects.count() == 4
    # A deleted dataset takes its stored answers along (Django's cascade: the table has no
    # foreign-key constraint in the database). Three: q3's was drawn before the refusal.
    assert ReleasedAnswer.objects.filter(dataset_id=datasets[0]).count() == 3
    Dataset.objects.filter(pk=datasets[0]).delete()
    assert not ReleasedAnswer.objects.filter(dataset_id=datasets[0]).exists()


def test_a_first_draw_made_meanwhile_by_another_query_is_the_one_served(
    datasets, settings, monkeypatch
) -> None:
    settings.DISCLOSURE_NOISE_SCALE = 1000.0  # twelve draws of this scale, twice, differ
    settings.DISCLOSURE_SUPPRESS_BELOW = -(10**9)  # every draw says a count
    settings.DISCLOSURE_USER_BUDGET = settings.DISCLOSURE_NETWORK_BUDGET = 100
    asked = {d: (RARE, "count") for d in datasets}
    first = release_answers(
        caller=Caller.for_address(user_id=None, address="192.0.2.1"), query_key="q", asked=asked
    )
    rows = {r.dataset_id: r.count for r in ReleasedAnswer.objects.all()}
    # The second caller read before the first committed: it draws too, its insert
    # conflicts, and it serves the first draw, which stays stored.
    _stale_first_read(monkeypatch, {})
    second = release_answers(
        caller=Caller.for_address(user_id=None, address="198.51.100.1"),
        query_key="q",
        asked=asked,
    )
    assert {d: cast(Released, r).count for d, r in second.items()} == rows
    assert {d: cast(Released, r).count for d, r in first.items()} == rows
    assert {r.dataset_id: r.count for r in ReleasedAnswer.objects.all()} == rows


def test_a_changed_tally_is_drawn_again_once(datasets, settings, monkeypatch) -> None:
    settings.DISCLOSURE_NOISE_SCALE = 1000.0
    settings.DISCLOSURE_SUPPRESS_BELOW = -(10**9)
    settings.DISCLOSURE_USER_BUDGET = settings.DISCLOSURE_NETWORK_BUDGET = 100
    caller = Caller.for_address(user_id=None, address="192.0.2.1")
    dataset = datasets[0]
    release_answers(caller=caller, query_key="q", asked={dataset: (RARE, "count")})
    before = ReleasedAnswer.objects.get()
    # A file added: the dataset's tallies for the query changed, the answer is redrawn.
    grown = [AlleleTally(allele_count=5, allele_number=800)]
    redrawn = release_answers(caller=caller, query_key="q", asked={dataset: (grown, "count")})
    after = ReleasedAnswer.objects.get()
    policy = batch.DisclosurePolicy.current()
    assert after.truth_sha256 == _truth_fingerprint(grown, Granularity.COUNT, policy)
    assert after.truth_sha256 != before.truth_sha256
    assert cast(Released, redrawn[dataset]).count == after.count
    # Another query redrew meanwhile (this one read the old answer): its redraw is kept.
    stale = batch._Stored(before.truth_sha256, True, False, True, before.count, False)
    _stale_first_read(monkeypatch, {str(dataset): stale})
    served = release_answers(caller=caller, query_key="q", asked={dataset: (grown, "count")})
    assert cast(Released, served[dataset]).count == after.count
    assert ReleasedAnswer.objects.get().count == after.count
    assert ReleasedAnswer.objects.get().query_sha256 == _sha256("q")


@pytest.mark.parametrize("set_based", [True, False], ids=["arrays", "orm"])
def test_both_ways_of_writing_answers_store_the_same(
    datasets, settings, monkeypatch, set_based
) -> None:
    """The set-based statements (PostgreSQL) and the ORM (other databases) store and
    serve the same answers."""
    assert connection.vendor == "postgresql"
    monkeypatch.setattr(batch, "_set_based", lambda: set_based)
    settings.DISCLOSURE_NOISE_SCALE = 0
    settings.DISCLOSURE_SUPPRESS_BELOW = 2
    settings.DISCLOSURE_USER_BUDGET = settings.DISCLOSURE_NETWORK_BUDGET = 100
    caller = Caller.for_address(user_id=None, address="192.0.2.1")
    asked = {
        d: (RARE if i % 2 else [], "count" if i % 3 else "boolean") for i, d in enumerate(datasets)
    }
    first = release_answers(caller=caller, query_key="q", asked=asked)
    # Half of them change (a redraw), then all are served again from the store.
    changed = {d: ([AlleleTally(4, 400)], level) for d, (_, level) in list(asked.items())[:6]}
    second = release_answers(caller=caller, query_key="q", asked={**asked, **changed})
    stored = {r.dataset_id: (r.suppressed, r.exists, r.count) for r in ReleasedAnswer.objects.all()}
    assert len(stored) == len(datasets)
    for d, (alleles, level) in {**asked, **changed}.items():
        answer = cast(Released, second[d])
        truth = (3 if alleles == RARE else 4) if alleles else 0
        assert answer.suppressed == (truth < 2)
        assert answer.exists == (None if truth < 2 else True)
        expected_count = None if truth < 2 or level == "boolean" else 5
        assert answer.count == expected_count
        assert stored[d][:2] == (answer.suppressed, answer.exists)
    assert all(cast(Released, first[d]).charged for d in datasets)


def test_the_migration_carries_the_budget_ledger_over(transactional_db: None) -> None:
    """Budgets spent before the ledger was kept per holder stay spent (a migration that
    dropped them would hand every caller a fresh budget)."""
    from django.core.management import call_command
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    donor = cast(User, UserFactory(role=Role.DONOR))
    ids = [
        Dataset.objects.create(donor=donor, title=f"d{i}", price=1, access_days=1).pk
        for i in range(2)
    ]
    at = timezone.now()
    try:
        call_command("migrate", "disclosure", "0001", verbosity=0)
        old = (
            MigrationExecutor(connection)
            .loader.project_state(("disclosure", "0001_privacy_disclosure"))
            .apps
        )
        account, charge = (
            old.get_model("disclosure", "BudgetAccount"),
            old.get_model("disclosure", "BudgetCharge"),
        )
        for holder in ("net:192.0.2.0/24", "user:7"):
            for dataset_id in ids:
                held = account.objects.create(holder=holder, dataset_id=dataset_id)
                charge.objects.create(account=held, query_sha256="q1", charged_at=at)
        charge.objects.create(
            account=account.objects.get(holder="user:7", dataset_id=ids[0]),
            query_sha256="q2",
            charged_at=at,
        )
        call_command("migrate", "disclosure", verbosity=0)
    finally:
        call_command("migrate", verbosity=0)
    assert sorted(BudgetAccount.objects.values_list("holder", flat=True)) == [
        "net:192.0.2.0/24",
        "user:7",
    ]
    ledger = {
        (c.account.holder, c.query_sha256): sorted(c.datasets)
        for c in BudgetCharge.objects.select_related("account")
    }
    assert ledger == {
        ("net:192.0.2.0/24", "q1"): sorted(str(d) for d in ids),
        ("user:7", "q1"): sorted(str(d) for d in ids),
        ("user:7", "q2"): [str(ids[0])],
    }
    status = budget_remaining_many(
        caller=Caller.for_address(user_id=7, address="192.0.2.9"), dataset_ids=ids
    )
    assert (status[ids[0]].spent, status[ids[1]].spent) == (2, 1)
