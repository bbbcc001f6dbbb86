"""`release_answer` for many datasets at once: the same rules (disclosure.services), in a
handful of statements and rows whatever the number of datasets, so that a Beacon query over
1,000 datasets answers in milliseconds (bench/beacon.py). `services.release_answer` is this
for one dataset, so the budget and the stored answers have one implementation.

What one query costs the database, whatever the number of datasets:
- the stored answers (of the datasets whose answer is drawn: all but those far above the
  rare threshold): read in one statement (one range of the (query, dataset) index); new
  or redrawn ones written in one set-based statement each (PostgreSQL: INSERT ... SELECT
  FROM unnest(arrays); other databases, SQLite in local development, through the ORM),
  their noise drawn in one OpenDP call;
- the budget (for the datasets whose stored answer is charged): each of the caller's
  holders (account, network) is one locked `BudgetAccount` row; its charges in the window
  (and any earlier charge of this query) are read in one statement, and this query's
  charge is one `BudgetCharge` row per holder naming the datasets charged (not a row per
  holder and dataset).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from disclosure.models import BudgetAccount, BudgetCharge, ReleasedAnswer
from disclosure.policy import DisclosurePolicy
from disclosure.services import _sha256, _truth_fingerprint
from disclosure.types import AlleleTally, BudgetExhausted, Caller, Granularity, Released

Asked = tuple[Sequence[AlleleTally], Granularity | str]
ANSWERS = ReleasedAnswer._meta.db_table


@lru_cache(maxsize=8)
def _vector_laplace(scale: float):  # type: ignore[no-untyped-def]  # an OpenDP Measurement
    import opendp.prelude as dp

    # "contrib": OpenDP's measurements not yet vetted by its committee; the discrete
    # Laplace (geometric) mechanism on integers is among them.
    dp.enable_features("contrib")
    return dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=int, nan=False)), dp.l1_distance(T=int), scale=scale
    )


def _noisy_counts(true_counts: list[int], *, scale: float) -> list[int]:
    """Each count plus discrete Laplace noise of `scale` (alleles; epsilon 1/scale per
    allele of sensitivity), in one call of OpenDP's sampler (a cryptographically seeded,
    exact integer sampler; the same discrete Laplace on each coordinate, drawn
    independently; one call instead of one per dataset is what makes 1,000 datasets
    affordable)."""
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


class _Stored(NamedTuple):
    """A stored answer as read back: what `Released` needs, and what it was drawn from."""

    truth_sha256: str
    charged: bool  # the gate draw fell below the gate (column `rare`)
    suppressed: bool
    exists: bool | None
    released_count: int | None
    exact: bool


class _Drawn(NamedTuple):
    """A dataset whose answer is drawn (and stored), not given exactly."""

    dataset_id: UUID
    key: str  # the dataset id as text: how the ledger and the SQL name it
    alleles: Sequence[AlleleTally]
    level: Granularity


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
    drawn: list[_Drawn] = []
    # Most of 1,000 datasets ask the same thing (nothing matched), and what follows is a
    # function of (AC, AN, granularity) alone: undrawn_from, and answer without draws, are
    # pure; a Released is immutable, so equal ones are shared.
    levels: dict[Granularity | str, Granularity] = {}
    undrawn: dict[int, int] = {}
    exact: dict[tuple[int, int, Granularity], Released] = {}
    for dataset_id, (alleles, granularity) in asked.items():
        level = levels.get(granularity) or levels.setdefault(granularity, Granularity(granularity))
        true_ac, allele_number = _tally(alleles) if alleles else (0, 0)
        if policy.enabled:
            limit = undrawn.get(allele_number)
            if limit is None:
                limit = undrawn[allele_number] = policy.undrawn_from(allele_number)
            if true_ac < limit:
                drawn.append(_Drawn(dataset_id, str(dataset_id), alleles, level))
                continue
        released = exact.get((true_ac, allele_number, level))
        if released is None:
            _, suppressed, exists, count, is_exact = policy.answer(
                true_ac=true_ac,
                allele_number=allele_number,
                draws=None,
                with_count=level is Granularity.COUNT,
            )
            released = exact[true_ac, allele_number, level] = Released(
                suppressed=suppressed, exists=exists, count=count, exact=is_exact, charged=False
            )
        results[dataset_id] = released
    if not drawn:
        return results
    now = timezone.now()
    with transaction.atomic():
        # Draws are the query's, not the caller's: they are stored before any budget is
        # decided, so a refused caller changes nothing a later caller gets.
        stored, drew = _answers(
            query_sha256=query_sha256, query_key=query_key, asked=drawn, policy=policy, now=now
        )
        keys = [d.key for d in drawn if stored[d.key].charged]
        # Free but noisy (the gate draw between the gate and the exact answer): served only
        # while the caller has budget left on the dataset, spending none. Once the budget
        # is spent, which of these pass would otherwise be the caller's unlimited view of
        # the gate draw on every rare allele it asks (README "Disclosure control").
        noisy = [d.key for d in drawn if not stored[d.key].charged and not stored[d.key].exact]
        refused: dict[str, BudgetExhausted] = {}
        charged: set[str] = set()
        # A caller's repeat (nothing drawn now, every holder charged for this query on every
        # dataset before) is decided without locking: nothing is due, and nothing another
        # query does meanwhile can change that (charges are never taken back).
        if keys and (drew or not _repeated(caller=caller, query_sha256=query_sha256, keys=keys)):
            refused, charged = _charge(
                caller=caller,
                query_sha256=query_sha256,
                keys=keys,
                noisy=noisy,
                now=now,
                policy=policy,
            )
        elif noisy:  # nothing to charge: whether the budget is spent is a read, no lock
            refused = _spent_on(caller=caller, keys=noisy, now=now, policy=policy)
    shared: dict[tuple[object, ...], Released] = {}
    for d in drawn:
        refusal = refused.get(d.key)
        if refusal is not None:
            results[d.dataset_id] = refusal
            continue
        answer = stored[d.key]
        said = (
            answer.suppressed,
            answer.exists,
            answer.released_count if d.level is Granularity.COUNT else None,
            answer.exact,
            d.key in charged,
        )
        released = shared.get(said)
        if released is None:
            released = shared[said] = Released(*said)
        results[d.dataset_id] = released
    return results


def _repeated(*, caller: Caller, query_sha256: str, keys: list[str]) -> bool:
    """Whether each of the caller's holders was charged this query on every dataset of
    `keys` (ids as text) already."""
    paid: dict[str, set[str]] = {h: set() for h in caller.holders}
    for holder, datasets in BudgetCharge.objects.filter(
        account__holder__in=caller.holders, query_sha256=query_sha256
    ).values_list("account__holder", "datasets"):
        paid[holder].update(datasets)
    return all(paid[h].issuperset(keys) for h in caller.holders)


def _spent_on(
    *, caller: Caller, keys: list[str], now: datetime, policy: DisclosurePolicy
) -> dict[str, BudgetExhausted]:
    """The datasets of `keys` (ids as text) on which one of the caller's holders has spent
    its budget in the window, with why (what `_charge` refuses, read without locking:
    charges are never taken back, so a spent budget stays spent for the window)."""
    since = now - timedelta(seconds=policy.window_s)
    wanted = set(keys)
    window: dict[str, list[tuple[datetime, set[str]]]] = {h: [] for h in caller.holders}
    for holder, charged_at, datasets in BudgetCharge.objects.filter(
        account__holder__in=caller.holders, charged_at__gt=since
    ).values_list("account__holder", "charged_at", "datasets"):
        window[holder].append((charged_at, set(datasets) & wanted))
    refused: dict[str, BudgetExhausted] = {}
    for holder in sorted(caller.holders):
        spent = Counter(key for _, named in window[holder] for key in named)
        for key, count in spent.items():
            if count >= policy.budget_for(holder) and key not in refused:
                refused[key] = _exhausted(holder, _oldest(window[holder], key), policy.window_s)
    return refused


def _charge(
    *,
    caller: Caller,
    query_sha256: str,
    keys: list[str],
    noisy: Sequence[str] = (),
    now: datetime,
    policy: DisclosurePolicy,
) -> tuple[dict[str, BudgetExhausted], set[str]]:
    """Charge this query to each of the caller's holders on each dataset of `keys` (ids
    as text) it has not been charged to them for before (a repeat is free), unless a
    holder that would be charged has spent its budget on that dataset in the window: then
    that dataset is refused and charges nothing. The datasets of `noisy` (free, noisy
    answers) charge nothing and are refused when any holder has spent its budget on them.
    Returns ({refused dataset: why}, {charged datasets}).

    The holders' account rows are locked (in holder order) until the transaction ends, so
    two queries of one holder decide one after the other and cannot overspend."""
    holders = sorted(caller.holders)

    def locked() -> dict[str, int]:
        rows = (
            BudgetAccount.objects.select_for_update()
            .filter(holder__in=holders)
            .order_by("holder")
            .values_list("holder", "id")
        )
        return dict(rows)

    accounts = locked()
    if len(accounts) < len(holders):
        BudgetAccount.objects.bulk_create(
            [BudgetAccount(holder=h) for h in holders if h not in accounts], ignore_conflicts=True
        )
        accounts = locked()
    since = now - timedelta(seconds=policy.window_s)
    paid: dict[int, set[str]] = {a: set() for a in accounts.values()}
    spent: dict[int, Counter[str]] = {a: Counter() for a in accounts.values()}
    window: dict[int, list[tuple[datetime, set[str]]]] = {a: [] for a in accounts.values()}
    for account_id, charged_query, charged_at, datasets in BudgetCharge.objects.filter(
        Q(charged_at__gt=since) | Q(query_sha256=query_sha256), account_id__in=accounts.values()
    ).values_list("account_id", "query_sha256", "charged_at", "datasets"):
        if charged_query == query_sha256:
            paid[account_id].update(datasets)
        if charged_at > since:
            named = set(datasets)
            spent[account_id].update(named)
            window[account_id].append((charged_at, named))
    # Set algebra rather than a loop over 1,000 datasets: for each holder (in holder
    # order) the datasets it is due to pay for (not charged this query before), and
    # among them those on which it has spent its budget.
    wanted = set(keys)
    due = {a: wanted - paid[a] for a in accounts.values()}
    refused: dict[str, BudgetExhausted] = {}
    for holder, account_id in accounts.items():
        budget = policy.budget_for(holder)
        out = {key for key, count in spent[account_id].items() if count >= budget}
        for key in (out & (due[account_id] | set(noisy))) - refused.keys():
            refused[key] = _exhausted(holder, _oldest(window[account_id], key), policy.window_s)
    charges = {a: [key for key in keys if key in due[a] and key not in refused] for a in due}
    charged = set().union(*charges.values())
    BudgetCharge.objects.bulk_create(
        [
            BudgetCharge(account_id=a, query_sha256=query_sha256, charged_at=now, datasets=named)
            for a, named in charges.items()
            if named
        ]
    )
    return refused, charged


def _oldest(window: list[tuple[datetime, set[str]]], key: str) -> datetime:
    """When the oldest of a holder's charges in the window that names the dataset was
    made (the holder has spent its budget on it: there is one)."""
    return min(at for at, datasets in window if key in datasets)


# DisclosurePolicy.answer's (charged, suppressed, exists, count, exact)
_Draw = tuple[bool, bool, bool | None, int | None, bool]


def _answers(
    *,
    query_sha256: str,
    query_key: str,
    asked: list[_Drawn],
    policy: DisclosurePolicy,
    now: datetime,
) -> tuple[dict[str, _Stored], bool]:
    """The stored answer of each dataset of `asked` to this query, by dataset id as text
    (and whether any was drawn now): the one stored, or, when there is none or the
    dataset's tallies changed since it was drawn, one drawn now and stored. Of two
    transactions drawing the same answer at once the first to write it wins and both
    serve its draw (an insert that conflicts, or an update whose stored tallies are no
    longer those it replaced, makes the loser read the store back)."""
    stored = _stored(query_sha256)
    fingerprints: dict[tuple[object, ...], str] = {}  # many datasets share tallies (absent)
    to_draw: list[tuple[_Drawn, str, _Stored | None]] = []
    for r in asked:
        tallies = (
            (r.level, *sorted((a.allele_count, a.allele_number) for a in r.alleles))
            if r.alleles
            else (r.level,)
        )
        truth = fingerprints.get(tallies)
        if truth is None:
            truth = fingerprints[tallies] = _truth_fingerprint(r.alleles, r.level, policy)
        answer = stored.get(r.key)
        if answer is None or answer.truth_sha256 != truth:
            to_draw.append((r, truth, answer))
    if not to_draw:
        return stored, False
    tallies_drawn = [_tally(r.alleles) if r.alleles else (0, 0) for r, _, _ in to_draw]
    # Two independent draws per dataset (gate, answer), in one call of OpenDP's sampler.
    noisy = _noisy_counts(
        [true_ac for true_ac, _ in tallies_drawn for _ in range(2)], scale=policy.noise_scale
    )
    fresh: list[tuple[_Drawn, str, _Draw]] = []
    redrawn: list[tuple[_Drawn, str, _Draw, str]] = []
    for index, ((r, truth, answer), (true_ac, allele_number)) in enumerate(
        zip(to_draw, tallies_drawn, strict=True)
    ):
        outcome = policy.answer(
            true_ac=true_ac,
            allele_number=allele_number,
            draws=(noisy[2 * index], noisy[2 * index + 1]),
            with_count=r.level is Granularity.COUNT,
        )
        if answer is None:
            fresh.append((r, truth, outcome))
        else:
            redrawn.append((r, truth, outcome, answer.truth_sha256))
    drawn = [*fresh, *((r, truth, outcome) for r, truth, outcome, _ in redrawn)]
    if _write(query_sha256, query_key, fresh, redrawn, now):
        for r, truth, (charged, suppressed, exists, count, exact) in drawn:
            stored[r.key] = _Stored(truth, charged, suppressed, exists, count, exact)
    else:  # another transaction drew some of them first: serve what is stored now
        now_stored = _stored(query_sha256)
        for r, _, _ in drawn:
            stored[r.key] = now_stored[r.key]
    return stored, True


def _set_based() -> bool:
    """Whether the stored answers are written with arrays (PostgreSQL), not the ORM."""
    return connection.vendor == "postgresql"


def _stored(query_sha256: str) -> dict[str, _Stored]:
    """{dataset id as text: its stored answer to the query}. Plain SQL rather than the
    ORM, which would make a Python object per row (1,000 per Beacon query). PostgreSQL:
    one range of the (query, dataset) index, and one row per distinct answer (most
    datasets hold nothing and say the same) with its datasets' ids joined by commas."""
    columns = 'truth_sha256, rare, suppressed, "exists", count, exact'
    with connection.cursor() as cursor:
        if _set_based():
            cursor.execute(
                f"SELECT {columns}, string_agg(dataset_id::text, ',') FROM {ANSWERS} "  # noqa: S608 - our table name
                f"WHERE query_sha256 = %s GROUP BY {columns}",
                [query_sha256],
            )
            stored: dict[str, _Stored] = {}
            for t, r, s, e, c, x, ids in cursor.fetchall():
                stored.update(dict.fromkeys(ids.split(","), _Stored(t, r, s, e, c, x)))
            return stored
        cursor.execute(
            f"SELECT dataset_id, {columns} FROM {ANSWERS} WHERE query_sha256 = %s",  # noqa: S608
            [query_sha256],
        )
        return {
            str(d if isinstance(d, UUID) else UUID(d)): _Stored(t, bool(r), bool(s), e, c, bool(x))
            for d, t, r, s, e, c, x in cursor.fetchall()
        }


def _write(
    query_sha256: str,
    query_key: str,
    fresh: list[tuple[_Drawn, str, _Draw]],
    redrawn: list[tuple[_Drawn, str, _Draw, str]],
    now: datetime,
) -> bool:
    """Store new draws (`fresh`: (dataset, truth fingerprint, draw), none stored yet) and
    redraws (`redrawn`: the same and the fingerprint of the tallies the stored answer was
    drawn from, which it replaces only if still stored). True when every one was
    written; False when some lost to a concurrent transaction (or cannot be told)."""
    if not _set_based():
        _write_orm(query_sha256, query_key, fresh, redrawn, now)
        return False
    written = 0
    with connection.cursor() as cursor:
        if fresh:
            cursor.execute(
                f"INSERT INTO {ANSWERS} (dataset_id, query_sha256, query_key, granularity, "  # noqa: S608 - our table name
                'truth_sha256, rare, suppressed, "exists", count, exact, created_at, updated_at) '
                "SELECT u.d, %s, %s, u.g, u.t, u.r, u.s, u.e, u.c, u.x, %s, %s FROM unnest("
                "%s::uuid[], %s::text[], %s::text[], %s::bool[], %s::bool[], %s::bool[], "
                "%s::int8[], %s::bool[]) AS u(d, g, t, r, s, e, c, x) "
                "ON CONFLICT (query_sha256, dataset_id) DO NOTHING",
                [query_sha256, query_key, now, now, *_columns(fresh)],
            )
            written += cursor.rowcount
        if redrawn:
            cursor.execute(
                f"UPDATE {ANSWERS} AS a SET query_key = %s, granularity = u.g, "  # noqa: S608 - our table name
                'truth_sha256 = u.t, rare = u.r, suppressed = u.s, "exists" = u.e, '
                "count = u.c, exact = u.x, updated_at = %s FROM unnest("
                "%s::uuid[], %s::text[], %s::text[], %s::bool[], %s::bool[], %s::bool[], "
                "%s::int8[], %s::bool[], %s::text[]) AS u(d, g, t, r, s, e, c, x, old) "
                "WHERE a.query_sha256 = %s AND a.dataset_id = u.d AND a.truth_sha256 = u.old",
                [
                    query_key,
                    now,
                    *_columns([(r, truth, drawn) for r, truth, drawn, _ in redrawn]),
                    _pg_array(old for *_, old in redrawn),
                    query_sha256,
                ],
            )
            written += cursor.rowcount
    return written == len(fresh) + len(redrawn)


def _pg_array(tokens: Iterable[object]) -> str:
    """A PostgreSQL array literal of tokens that need no quoting (UUIDs, hex digests,
    granularity names, integers, and t/f/NULL for booleans and nulls). Built by hand because
    psycopg's adaptation of a Python list costs ~5 us an item (~5 ms for a 1,000-dataset
    query), and these tokens cannot hold a comma, brace, quote, backslash or space."""
    return "{" + ",".join(map(str, tokens)) + "}"


def _tokens(values: Iterable[bool | int | None]) -> Iterable[str]:
    """Booleans, integers and nulls as array-literal tokens."""
    for value in values:
        # `is`, not ==: 1 == True, and a count of 1 must stay 1.
        if value is None:
            yield "NULL"
        elif value is True or value is False:
            yield "t" if value else "f"
        else:
            yield str(value)


def _columns(rows: Sequence[tuple[_Drawn, str, _Draw]]) -> list[str]:
    """The array parameters (dataset, granularity, truth, then the draw's rare,
    suppressed, exists, count, exact) of `_write`'s statements."""
    return [
        _pg_array(r.key for r, _, _ in rows),
        _pg_array(r.level.value for r, _, _ in rows),
        _pg_array(truth for _, truth, _ in rows),
        *(_pg_array(_tokens(drawn[i] for _, _, drawn in rows)) for i in range(5)),
    ]


def _write_orm(
    query_sha256: str,
    query_key: str,
    fresh: list[tuple[_Drawn, str, _Draw]],
    redrawn: list[tuple[_Drawn, str, _Draw, str]],
    now: datetime,
) -> None:
    """`_write` for databases without arrays (SQLite in local development); what was
    written is read back."""

    def fields(r: _Drawn, truth: str, draw: _Draw) -> dict[str, object]:
        rare, suppressed, exists, count, exact = draw
        return {
            "query_key": query_key,
            "granularity": r.level.value,
            "truth_sha256": truth,
            "rare": rare,
            "suppressed": suppressed,
            "exists": exists,
            "count": count,
            "exact": exact,
        }

    ReleasedAnswer.objects.bulk_create(
        [
            ReleasedAnswer(
                dataset_id=r.dataset_id, query_sha256=query_sha256, **fields(r, truth, draw)
            )
            for r, truth, draw in fresh
        ],
        ignore_conflicts=True,
    )
    for r, truth, draw, old in redrawn:
        ReleasedAnswer.objects.filter(
            query_sha256=query_sha256, dataset_id=r.dataset_id, truth_sha256=old
        ).update(**fields(r, truth, draw), updated_at=now)
