"""Shared by the benchmarks: tables, medians, peak memory, a Django set-up on scratch
state (a temporary SQLite database and storage folder), and processes to time."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent
MIB = 1024 * 1024
GIB = 1024 * MIB


def machine() -> str:
    """The machine a table was measured on: cores, memory, CPU model, Python, how busy it
    was (1-minute load average) and when, e.g. "2 cores, 24 GiB, AMD EPYC, Python 3.11.7,
    load average 1.9, 2026-11-30 22:15 UTC"."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    # The load average says how busy the machine was (other work shares its cores), and
    # the date which run a pasted table comes from.
    load = os.getloadavg()[0]
    day = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, {cpu}, Python {sys.version.split()[0]}, "
        f"load average {load:.1f}, {day}"
    )


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}\n({machine()})")
    for index, row in enumerate(cells):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


def median_time(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def django_scratch(profile: str = "config.settings.test") -> Path:
    """Point Django at a throwaway database and storage, migrate, and return the folder."""
    scratch = Path(tempfile.mkdtemp(prefix="genemarket-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", profile)
    os.environ["VAR_DIR"] = str(scratch)
    os.environ["MEDIA_ROOT"] = str(scratch / "storage")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch / 'bench.sqlite3'}")
    os.environ["ARCHIVE_SECRET_KEY_FILE"] = str(scratch / "keys" / "archive.sec")
    os.environ["ARCHIVE_KEY_PASSPHRASE"] = "bench passphrase"  # noqa: S105 - scratch key
    sys.path.insert(0, str(PROJECT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return scratch


def start_gunicorn(port: int, settings_module: str) -> subprocess.Popen[bytes]:
    """The project's WSGI app under gunicorn (2 workers) on 127.0.0.1:`port`."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--timeout",
            "600",
            "--log-level",
            "critical",
        ],
        cwd=PROJECT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": settings_module},
        start_new_session=True,
    )


def recreate_database(name: str) -> str:
    """An empty PostgreSQL database of this name on the local server; its URL."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://postgres@127.0.0.1:5432/{name}"
