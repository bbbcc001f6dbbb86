"""The Beacon membership attack as a benchmark (issue 18 §4).

    .venv/bin/python bench/beacon_privacy.py [--regions 32] [--victims 50] [--workers 2]

A cohort simulated with msprime (coalescent with recombination; human mutation rate
1.25e-8 and recombination rate 1e-8 per bp per generation, Ne 10,000 growing exponentially
to 200,000 over the last 400 generations, which gives the excess of rare alleles real
cohorts have) over `--regions` (32) independent 1 Mb regions: 2,150 diploid individuals, of
whom 1,000 are listed as a dataset (allele counts per site, AN = 2,000), 1,000 are the
attacker's reference panel (allele frequencies, as gnomAD would give) and 150 are held
out as non-members (by default 50 of them and 50 members are the victims). Every answer
goes through `disclosure.services.release_answer`, the function the Beacon's `g_variants`
routes each per-dataset answer through.

The attack: Shringarpure and Bustamante's likelihood-ratio test (AJHG 2015, "Privacy
risks from genomic data-sharing beacons"), with the per-SNP allele frequencies of the
reference panel and the victim's alleles queried rarest first (Raisaro et al., JAMIA
2017). For a victim carrying the alternate allele at sites i = 1..n, answers x_i (1 "yes",
0 "no" or suppressed), a Beacon of N individuals and the reference frequency f_i:

    D_N(i) = (1 - f_i)^(2N)   (no copy among the Beacon's N genomes)
    L = sum_i x_i log[(1 - D_N) / (1 - d D_(N-1))] + (1 - x_i) log[D_N / (d D_(N-1))]

with d = 1e-6 the rate of a victim's allele missing from the Beacon's calls; L is small
for members. The threshold is the 5 % quantile of L over the non-members (5 % false
positives), power the share of the members below it, after each number of queries.

Settings compared: protection off (DISCLOSURE_ENABLED=false: exact yes/no, no budget),
and our defaults against one attacker account and against 10 colluding accounts on 10
different network prefixes (a refused query is skipped; alleles the gate lets through are free).
Utility: one honest account asks 1,000 distinct queries about variants with allele
frequency >= 1 % (in the dataset, and in the reference panel) and counts exact answers.
Needs the local PostgreSQL. The cost is the protected run: each victim's coalition spends
its whole budget, each charged query a transaction. Measured on 2 cores shared with other
test runs (load average 10-13): `--victims 20 --workers 3` took 306 s with the default
budget of 5 and 1,294 s with a budget of 50 (README "Privacy benchmark").
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATABASE = os.environ.get("BENCH_BEACON_PRIVACY_DATABASE", "genemarket_bench_beacon_privacy")
BEACON_SIZE = 1000
REFERENCE_SIZE = 1000
HELD_OUT = 150
MISSING_RATE = 1e-6  # d in the LRT: a victim's allele absent from the Beacon's calls
FALSE_POSITIVES = 0.05
CHECKPOINTS = (10, 20, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000)
COLLUDERS = 10
WORKERS = 2
RARE_BY_REFERENCE = 0.01


@dataclass(frozen=True)
class Cohort:
    """Diploid genotypes (alternate allele copies, 0..2) as sites x individuals, each site
    an A>G SNP at (chromosome, VCF POS), and the Beacon's normalised query
    key of each (discovery.beacon.query: it keys the stored answers)."""

    genotypes: np.ndarray
    sites: list[tuple[int, int]]
    keys: list[str]


def simulate(regions: int, seed: int, victims: int) -> tuple[Cohort, Split]:
    """The cohort, region by region (only the victims' genotypes are kept, so that many
    regions fit in memory): members are `victims` of the dataset's 1,000 individuals,
    non-members the first `victims` held-out ones; `Cohort.genotypes` has the members'
    columns first, then the non-members'."""
    import msprime

    demography = msprime.Demography()
    # Sizes backwards in time: 200,000 today, 10,000 at 400 generations and before.
    demography.add_population(name="human", initial_size=200_000, growth_rate=math.log(20) / 400)
    demography.add_population_parameters_change(time=400, growth_rate=0, initial_size=10_000)
    individuals = BEACON_SIZE + REFERENCE_SIZE + HELD_OUT
    rng = np.random.default_rng(seed)
    members = rng.choice(BEACON_SIZE, size=victims, replace=False)
    non_members = np.arange(BEACON_SIZE + REFERENCE_SIZE, BEACON_SIZE + REFERENCE_SIZE + victims)
    columns = np.concatenate([members, non_members])
    blocks, beacon_ac, reference_ac, sites = [], [], [], []
    for region in range(regions):
        ts = msprime.sim_ancestry(
            samples=individuals,
            demography=demography,
            sequence_length=1_000_000,
            recombination_rate=1e-8,
            random_seed=seed + region,
        )
        ts = msprime.sim_mutations(
            ts, rate=1.25e-8, random_seed=seed + 1000 + region, model=msprime.BinaryMutationModel()
        )
        haplotypes = ts.genotype_matrix()
        diploid = (haplotypes[:, 0::2] + haplotypes[:, 1::2]).astype(np.int8)
        blocks.append(diploid[:, columns])
        beacon_ac.append(diploid[:, :BEACON_SIZE].sum(axis=1, dtype=np.int64))
        reference_ac.append(
            diploid[:, BEACON_SIZE : BEACON_SIZE + REFERENCE_SIZE].sum(axis=1, dtype=np.int64)
        )
        # Region r is the (r // 22)-th megabase of chromosome r % 22 + 1.
        chrom, offset = region % 22 + 1, region // 22 * 1_000_000
        sites += [(chrom, offset + int(site.position) + 1) for site in ts.sites()]
    from discovery.beacon.query import parse

    keys = [
        parse(
            {
                "referenceName": str(chrom),
                "start": pos - 1,
                "referenceBases": "A",
                "alternateBases": "G",
                "assemblyId": "GRCh38",
            }
        ).key()
        for chrom, pos in sites
    ]
    cohort = Cohort(genotypes=np.vstack(blocks), sites=sites, keys=keys)
    parts = Split(
        beacon_ac=np.concatenate(beacon_ac),
        # Never 0: an allele unseen in the panel is rare, not impossible.
        reference_af=(np.concatenate(reference_ac) + 0.5) / (2 * REFERENCE_SIZE + 1),
        members=list(range(victims)),
        non_members=list(range(victims, 2 * victims)),
    )
    return cohort, parts


@dataclass
class Split:
    beacon_ac: np.ndarray  # per site, in the listed dataset
    reference_af: np.ndarray  # per site, the attacker's estimate
    members: list[int]  # columns of Cohort.genotypes: individuals inside the dataset
    non_members: list[int]


def lrt_terms(af: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-query LRT terms for a "yes" and for a "no" (see the module doc)."""
    log_d_n = 2 * BEACON_SIZE * np.log1p(-af)
    log_d_n1 = 2 * (BEACON_SIZE - 1) * np.log1p(-af)
    yes = np.log(-np.expm1(log_d_n)) - np.log1p(-MISSING_RATE * np.exp(log_d_n1))
    no = log_d_n - (math.log(MISSING_RATE) + log_d_n1)
    return yes, no


class Beacon:
    """The listed dataset behind `release_answer`."""

    def __init__(self, cohort: Cohort, parts: Split, dataset_id: uuid.UUID) -> None:
        self.cohort = cohort
        self.parts = parts
        self.dataset_id = dataset_id

    def ask(self, caller: object, site: int) -> tuple[int, bool] | None:
        """(1 for "yes", 0 for "no" or suppressed; whether it cost budget), or None when
        the budget refuses."""
        from disclosure.services import AlleleTally, BudgetExhausted, Caller, release_answer

        assert isinstance(caller, Caller)
        ac = int(self.parts.beacon_ac[site])
        alleles = [AlleleTally(allele_count=ac, allele_number=2 * BEACON_SIZE)] if ac > 0 else []
        try:
            answer = release_answer(
                caller=caller,
                dataset_id=self.dataset_id,
                query_key=self.cohort.keys[site],
                alleles=alleles,
            )
        except BudgetExhausted:
            return None
        return (1 if answer.exists else 0), answer.charged


@dataclass(frozen=True)
class Answered:
    site: int
    said: int  # 1 "yes", 0 "no" or suppressed
    term: float  # the query's LRT term
    charged: bool
    reference_af: float


def attack(beacon: Beacon, victim: int, callers: Sequence[object]) -> list[Answered]:
    """The coalition's answered queries about the victim's alleles, rarest first: a refused
    query goes to the coalition's next account; refused by all, it is skipped. Accounts
    whose budget is spent still get common alleles answered: with all spent, the first
    keeps asking, but only about alleles the reference panel calls common (the others
    would be refused)."""
    parts = beacon.parts
    sites = np.flatnonzero(beacon.cohort.genotypes[:, victim] > 0)
    sites = sites[np.argsort(parts.reference_af[sites], kind="stable")]
    yes, no = lrt_terms(parts.reference_af[sites])
    answered: list[Answered] = []
    spent: set[int] = set()
    for index, site in enumerate(sites):
        if len(answered) >= max(CHECKPOINTS):
            break
        reference_af = float(parts.reference_af[site])
        askers = [n for n in range(len(callers)) if n not in spent]
        if not askers:
            if reference_af < RARE_BY_REFERENCE:
                continue
            askers = [0]
        answer = None
        for number in askers:
            answer = beacon.ask(callers[number], int(site))
            if answer is not None:
                break
            spent.add(number)
        if answer is None:
            continue
        said, charged = answer
        term = yes[index] if said else no[index]
        answered.append(Answered(int(site), said, term, charged, reference_af))
    return answered


def within_budget(answered: list[Answered], budget: int | None) -> np.ndarray:
    """The LRT statistic after each query a coalition with `budget` rare-allele queries
    (None: unlimited) gets answered, from a run with a budget at least as large: the
    stored answers are the same whoever asks, so a smaller coalition sees a prefix of the
    charged answers and, once spent, only the free answers it would still ask for."""
    terms, charged = [], 0
    for answer in answered:
        if budget is not None and answer.charged:
            if charged >= budget:
                continue
            charged += 1
        elif budget is not None and charged >= budget and answer.reference_af < RARE_BY_REFERENCE:
            continue
        terms.append(answer.term)
    return np.cumsum(terms)


def power_curve(members: list[np.ndarray], non_members: list[np.ndarray]) -> list[float]:
    def at(curves: list[np.ndarray], n: int) -> np.ndarray:
        return np.array([c[min(n, len(c)) - 1] if len(c) else 0.0 for c in curves])

    powers = []
    for n in CHECKPOINTS:
        threshold = np.quantile(at(non_members, n), FALSE_POSITIVES)
        powers.append(float(np.mean(at(members, n) < threshold)))
    return powers


# What the forked attack processes read (set before the fork; see run_setting).
_RUN: dict[str, object] = {}


def _attack_one(task: tuple[str, int]) -> list[Answered]:
    group, victim = task
    make_callers = _RUN["make_callers"]
    return attack(_RUN["beacon"], victim, make_callers(group, victim))  # type: ignore[arg-type,operator]


def run_setting(
    beacon: Beacon, parts: Split, make_callers: object, label: str, budgets: dict[str, int | None]
) -> tuple[dict[str, list[float]], dict[str, list[list[Answered]]]]:
    """Power curves, one per coalition budget in `budgets` ({label: rare queries}), and the
    answered queries per victim. Victims are attacked by WORKERS forked processes (each
    with its own database connection; a coalition per victim, so they share no budget)."""
    import multiprocessing

    from django.db import connections

    started = time.perf_counter()
    _RUN.update(beacon=beacon, make_callers=make_callers)
    tasks = [(g, v) for g in ("members", "non_members") for v in getattr(parts, g)]
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(int(str(_RUN["workers"]))) as pool:
        results = pool.map(_attack_one, tasks, chunksize=1)
    runs: dict[str, list[list[Answered]]] = {"members": [], "non_members": []}
    for (group, _), answered in zip(tasks, results, strict=True):
        runs[group].append(answered)
    charged = [sum(a.charged for a in run) for run in runs["members"]]
    print(
        f"{label}: {time.perf_counter() - started:.0f} s; per member victim "
        f"{np.median([len(r) for r in runs['members']]):.0f} queries answered, "
        f"{np.median(charged):.0f} of them charged (median)",
        flush=True,
    )
    curves = {
        name: power_curve(
            [within_budget(r, budget) for r in runs["members"]],
            [within_budget(r, budget) for r in runs["non_members"]],
        )
        for name, budget in budgets.items()
    }
    return curves, runs


def endpoint_agrees(beacon: Beacon, runs: dict[str, list[list[Answered]]], count: int) -> str:
    """Ask `count` of the attack's answered queries again through the Beacon's HTTP
    endpoint (g_variants, Django's test client), half rare (charged) and half common, as
    fresh accounts: the endpoint must say what the attack was told (the stored answer)."""
    from rest_framework.test import APIClient

    from marketplace.models import Role, User

    answered = [a for run in runs["members"] + runs["non_members"] for a in run]
    rare = list({a.site: a for a in answered if a.charged}.values())[: count // 2]
    common = list({a.site: a for a in answered if not a.charged}.values())[: count // 2]
    agree = 0
    for index, asked in enumerate(rare + common):
        user = User.objects.create(username=f"bench-check-{index}", role=Role.RESEARCHER)
        client = APIClient()
        client.force_authenticate(user)
        chrom, pos = beacon.cohort.sites[asked.site]
        response = client.get(
            "/api/beacon/v2/g_variants",
            {
                "referenceName": str(chrom),
                "start": str(pos - 1),
                "referenceBases": "A",
                "alternateBases": "G",
                "assemblyId": "GRCh38",
            },
            REMOTE_ADDR=f"2001:db8:ffff:{index:x}::1",
        )
        assert response.status_code == 200, response.content
        found = any(
            r["id"] == str(beacon.dataset_id) and r["exists"]
            for r in response.json()["response"]["resultSets"]
        )
        agree += found == bool(asked.said)
    return f"{agree} of {len(rare) + len(common)} ({len(rare)} rare, {len(common)} common)"


def utility(
    beacon: Beacon, parts: Split, by: str, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(asked, answered, correct, exact) for 1,000 distinct queries of one honest account
    about sites with allele frequency >= 1 % (`by`: "dataset" or "reference"): answered
    (not refused by the budget), correct (the Beacon's yes/no is the truth: the dataset
    holds the allele), exact (flagged exact: no noise was involved)."""
    from disclosure.services import Caller

    af = parts.beacon_ac / (2 * BEACON_SIZE) if by == "dataset" else parts.reference_af
    pool = np.flatnonzero(af >= 0.01)
    sites = rng.choice(pool, size=min(1000, len(pool)), replace=False)
    caller = Caller.for_address(user_id=10**9 + (by == "dataset"), address="192.0.2.10")
    from disclosure.services import AlleleTally, BudgetExhausted, release_answer

    answered = correct = exact = 0
    for site in sites:
        ac = int(parts.beacon_ac[site])
        try:
            answer = release_answer(
                caller=caller,
                dataset_id=beacon.dataset_id,
                query_key=beacon.cohort.keys[site],
                alleles=[AlleleTally(ac, 2 * BEACON_SIZE)] if ac else [],
            )
        except BudgetExhausted:
            continue
        answered += 1
        correct += bool(answer.exists) == (ac > 0)
        exact += answer.exact
    return len(sites), answered, correct, exact


def plot(path: Path, curves: dict[str, list[float]], budget: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, powers in curves.items():
        axes.plot(CHECKPOINTS, powers, marker="o", label=label)
    axes.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    axes.axhline(0.1, color="grey", linestyle=":", linewidth=1)
    axes.axvline(budget, color="tab:green", linestyle="--", linewidth=1)
    axes.axvline(budget * COLLUDERS, color="tab:red", linestyle="--", linewidth=1)
    axes.set_xscale("log")
    axes.set_xlabel("queries answered (victim's alleles, rarest first)")
    axes.set_ylabel("power at 5 % false positives")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title("Likelihood-ratio membership attack on a 1,000-genome Beacon")
    axes.legend(loc="center right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--regions", type=int, default=32)
    # 150 a side: at 50 one victim is 0.02 of power and the 5 % threshold is the 2nd-3rd
    # lowest non-member, so a figure moved by about 0.05 between runs.
    parser.add_argument(
        "--victims", type=int, default=HELD_OUT, help=f"members and non-members, at most {HELD_OUT}"
    )
    parser.add_argument("--seed", type=int, default=20151029)
    parser.add_argument("--workers", type=int, default=WORKERS, help="attack processes")
    parser.add_argument("--plot", type=Path, default=Path("docs/beacon_privacy.png"))
    args = parser.parse_args()
    _RUN["workers"] = args.workers
    from bench.support.common import django_scratch, recreate_database, table

    os.environ["DATABASE_URL"] = recreate_database(DATABASE)
    import psycopg

    # A scratch database: a commit need not wait for the disk (the answers are the same).
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f'ALTER DATABASE "{DATABASE}" SET synchronous_commit = off')
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    django_scratch()
    import logging

    logging.getLogger("msprime").setLevel(logging.WARNING)
    from django.conf import settings
    from django.test import override_settings
    from django.test.utils import setup_test_environment

    setup_test_environment()  # Django's test client: "testserver" is an allowed host

    from disclosure.services import Caller
    from marketplace.models import Dataset, Role, User

    started = time.perf_counter()
    cohort, parts = simulate(args.regions, args.seed, args.victims)
    rng = np.random.default_rng(args.seed)
    rare = np.mean(
        (parts.beacon_ac < settings.DISCLOSURE_RARE_MIN_AC)
        | (parts.beacon_ac / (2 * BEACON_SIZE) < settings.DISCLOSURE_RARE_AF)
    )
    print(
        f"simulated {len(cohort.keys):,} sites x "
        f"{BEACON_SIZE + REFERENCE_SIZE + HELD_OUT:,} individuals "
        f"in {time.perf_counter() - started:.1f} s; {rare:.0%} of sites rare in the dataset"
    )
    donor = User.objects.create(username="bench-donor", role=Role.DONOR)

    def listed(title: str, *, indexed: bool = True) -> Beacon:
        """The cohort listed as a dataset whose one file is in the variant index (AC, AN
        per allele, as the ingest tap writes them), so the Beacon serves it."""
        from discovery.models import VariantAllele, VariantSource
        from tests.factories import ready_file

        stored = ready_file(donor, filename=f"{title}.vcf.gz")
        dataset = Dataset.objects.create(
            donor=donor,
            title=title,
            price=1,
            access_days=30,
            duo_codes=[{"code": "DUO:0000042", "value": ""}],
            format_index=" VCF ",
            reference_index=" GRCh38 ",
            record_hash="0" * 64,
        )
        dataset.files.add(stored)
        if not indexed:
            return Beacon(cohort, parts, dataset.pk)
        present = np.flatnonzero(parts.beacon_ac > 0)
        source = VariantSource.objects.create(file=stored, assembly="GRCh38", alleles=len(present))
        VariantAllele.objects.bulk_create(
            (
                VariantAllele(
                    chrom=cohort.sites[i][0],
                    pos=cohort.sites[i][1],
                    ref="A",
                    alt="G",
                    allele_count=int(parts.beacon_ac[i]),
                    allele_number=2 * BEACON_SIZE,
                    source=source,
                    kind=VariantAllele.Kind.SNP,
                )
                for i in present
            ),
            batch_size=5000,
        )
        return Beacon(cohort, parts, dataset.pk)

    def coalition(size: int, offset: int) -> object:
        def make(group: str, victim: int) -> list[Caller]:
            base = offset + victim * COLLUDERS
            # One IPv6 /64 per account: no two accounts share a network budget.
            return [
                Caller.for_address(
                    user_id=base + k,
                    address=f"2001:db8:{(base + k) >> 16:x}:{(base + k) & 0xFFFF:x}::7",
                )
                for k in range(size)
            ]

        return make

    budget = settings.DISCLOSURE_USER_BUDGET
    curves: dict[str, list[float]] = {}
    with override_settings(DISCLOSURE_ENABLED=False):
        off = listed("simulated cohort, protection off", indexed=False)
        off_curves, _ = run_setting(
            off, parts, coalition(1, 0), "protection off", {"protection off": None}
        )
        curves.update(off_curves)
    # One run of a 10-account coalition (each account on its own /64); one account's curve
    # is its first `budget` charged answers (within_budget).
    protected = listed("simulated cohort, defaults")
    protected_curves, runs = run_setting(
        protected,
        parts,
        coalition(COLLUDERS, 1_000_000),
        f"defaults, {COLLUDERS} colluding accounts",
        {
            f"defaults, 1 account ({budget} rare queries)": budget,
            f"defaults, {COLLUDERS} colluding accounts": budget * COLLUDERS,
        },
    )
    curves.update(protected_curves)
    print(f"Beacon endpoint (g_variants over HTTP) agrees: {endpoint_agrees(protected, runs, 100)}")

    table(
        f"Membership attack power at {FALSE_POSITIVES:.0%} false positives: Beacon of "
        f"{BEACON_SIZE:,} simulated genomes ({args.regions} x 1 Mb), {args.victims} members "
        f"and {args.victims} non-members",
        ["queries answered", *curves],
        [[n, *(f"{curves[c][i]:.2f}" for c in curves)] for i, n in enumerate(CHECKPOINTS)],
    )
    rows = []
    for by in ("dataset", "reference"):
        asked, answered, correct, exact = utility(protected, parts, by, rng)
        rows.append(
            [f"AF >= 1 % in the {by}", asked, answered, correct, f"{correct / asked:.1%}", exact]
        )
    table(
        "Utility with the defaults: one honest account, distinct queries in one day",
        ["variants", "asked", "answered", "answered truly", "true share", "flagged exact"],
        rows,
    )
    off_power = curves["protection off"][CHECKPOINTS.index(1000)]
    worst = max(max(p) for c, p in curves.items() if c != "protection off")
    print(
        f"protection off, power within 1,000 queries: {off_power:.2f} (target >= 0.9: "
        f"{'met' if off_power >= 0.9 else 'NOT met'}); defaults, highest power at any number "
        f"of queries, 1 or {COLLUDERS} accounts: {worst:.2f} (target <= 0.1: "
        f"{'met' if worst <= 0.1 else 'NOT met'})"
    )
    plot(args.plot, curves, budget)
    print(f"plot: {args.plot}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
