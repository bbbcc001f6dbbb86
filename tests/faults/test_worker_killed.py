"""The Celery worker's processes are killed (SIGKILL) in the middle of an ingest: after
they restart the ingest completes exactly once, with the right result and no stray
payload. acks_late and task_reject_on_worker_lost put the task back; ingest is
idempotent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from tests.genomics import samples
from tests.support.stack import ApiUser, LiveStack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(shared_stack: LiveStack) -> LiveStack:
    return shared_stack


def test_an_ingest_survives_its_worker_being_killed(stack: LiveStack, tmp_path: Path) -> None:
    donor = ApiUser.register(stack.base, "killed-donor", "donor")
    vcf = samples.write_variants(tmp_path / "big.vcf", "w", records=1_000_000).read_bytes()
    file_id = donor.upload(vcf, "big.vcf", chunk=8 * 1024 * 1024)
    path = f"/api/v1/files/{file_id}"
    donor.wait_for(
        path,
        lambda f: f["state"] == "ingesting" and f["progress"] > 0,
        what="the ingest to be under way",
        timeout_s=60,
    )
    stack.kill_worker_pool()

    ready = donor.wait_for(
        path,
        lambda f: f["state"] in ("ready", "failed"),
        what="the ingest to finish",
        timeout_s=180,
    )
    assert ready["state"] == "ready", ready
    assert ready["plaintext_sha256"] == hashlib.sha256(vcf).hexdigest()
    assert ready["metadata"]["records"] == 1_000_000
    with psycopg.connect(stack.database.url) as db:
        parts = {
            name
            for (name,) in db.execute(
                "SELECT storage_name FROM genomics_payloadpart WHERE file_id = %s", [file_id]
            )
        }
        row = db.execute(
            "SELECT payload_key FROM genomics_genomicfile WHERE id = %s", [file_id]
        ).fetchone()
        assert row is not None
        payload_key = str(row[0])
        files = db.execute(
            "SELECT count(*) FROM genomics_genomicfile f JOIN accounts_user u "
            "ON u.id = f.owner_id WHERE u.username = 'killed-donor'"
        ).fetchone()
    assert files == (1,)
    root = stack.tmp / "var" / "storage"
    stored = {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and payload_key in str(p.relative_to(root))
    }
    assert stored == parts  # no orphan payload, nothing missing
