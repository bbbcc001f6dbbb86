"""PostgreSQL stops for a few seconds under load and comes back: requests meanwhile fail
cleanly (503 in plain words, never a 500), and the same web and worker processes serve
again afterwards without a restart."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.genomics import samples
from tests.support.postgres import PrivatePostgres
from tests.support.processes import wait_until
from tests.support.stack import ApiUser, LiveStack, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def stack(
    tmp_path: Path, private_pg: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveStack]:
    monkeypatch.setenv("DATABASE_URL", private_pg.url)
    monkeypatch.setenv("DEBUG", "false")  # the error pages users see, not Django's debug page
    # Four threads browsing as fast as the server answers pass the per-user API limit
    # (600/minute) within seconds; the limits are tested elsewhere, not here.
    monkeypatch.setenv("THROTTLE_USER", "1000000/minute")
    monkeypatch.setenv("THROTTLE_ANON", "1000000/minute")
    with running_stack(tmp_path) as live:
        yield live


def test_a_database_restart_under_load_fails_cleanly_and_recovers(
    stack: LiveStack, private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    base = stack.base
    donor = ApiUser.register(base, "pg-donor", "donor")
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    stop = threading.Event()

    def browse() -> None:
        paths = ["/datasets/", "/api/v1/datasets", "/api/v1/me"]
        while not stop.is_set():
            for path in paths:
                try:
                    answer = requests.get(f"{base}{path}", headers=donor.headers, timeout=10)
                    statuses[answer.status_code] += 1
                    if answer.status_code not in (200, 503) or (
                        answer.status_code == 503 and "database" not in answer.text.lower()
                    ):
                        problems.append(f"{path}: {answer.status_code} {answer.text[:200]}")
                except requests.RequestException as exc:
                    statuses[0] += 1
                    problems.append(f"{path}: {exc!r}")

    crowd = [threading.Thread(target=browse) for _ in range(4)]
    for thread in crowd:
        thread.start()
    try:
        time.sleep(2)
        private_pg.stop("fast")
        time.sleep(3)
        health = requests.get(f"{base}/health", timeout=15)
        assert health.status_code == 503 and "database" in health.json()["failing"]
        private_pg.start()
        time.sleep(4)
    finally:
        stop.set()
        for thread in crowd:
            thread.join()
    assert statuses[503] > 0, statuses  # the outage was seen …
    assert not problems, (statuses, problems[:5])  # … and answered cleanly, never a 500

    # The same processes serve again: pages, the API, and the worker's ingest.
    def serving() -> bool:
        paths = ("/datasets/", "/api/v1/datasets", "/api/v1/me")
        return all(
            requests.get(f"{base}{p}", headers=donor.headers, timeout=10).status_code == 200
            for p in paths
        )

    wait_until(serving, timeout_s=30, what="the web to serve again after the restart")
    vcf = samples.write_variants(tmp_path / "after.vcf", "w", records=200).read_bytes()
    file_id = donor.upload(vcf, "after.vcf")
    ready = donor.wait_for(
        f"/api/v1/files/{file_id}", lambda f: f["state"] in ("ready", "failed"), what="ingest"
    )
    assert ready["state"] == "ready", ready
    assert requests.get(f"{base}/health", timeout=15).status_code == 200
