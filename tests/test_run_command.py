"""`make run`'s command: the whole system comes up on embedded defaults, a task goes from
beat through the embedded broker to a worker, and SIGINT (Ctrl-C) leaves no process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.support.processes import free_port, wait_until

PROJECT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def processes_with_marker(marker: str) -> list[int]:
    """Pids whose environment carries `marker`: every process the run started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def call(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def upload_and_wait_until_ready(base: str) -> None:
    """A donor's VCF goes in through tus; the worker ingests it through the embedded broker
    with the archive key that `make run` created."""
    account = {
        "username": "run-donor",
        "password": "a-long-passphrase-42",
        "email": "d@example.org",
        "role": "donor",
    }
    json_headers = {"Content-Type": "application/json"}
    status, _, _ = call(
        f"{base}/api/v1/auth/register",
        method="POST",
        body=json.dumps(account).encode(),
        headers=json_headers,
    )
    assert status == 201
    _, _, token_body = call(
        f"{base}/api/v1/auth/token",
        method="POST",
        headers=json_headers,
        body=json.dumps({k: account[k] for k in ("username", "password")}).encode(),
    )
    auth = {"Authorization": f"Token {json.loads(token_body)['token']}", "Tus-Resumable": "1.0.0"}
    vcf = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + b"".join(
        b"1\t%d\t.\tA\tC\t.\t.\t.\n" % (i + 1) for i in range(5000)
    )
    status, headers, _ = call(
        f"{base}/api/v1/uploads/",
        method="POST",
        headers={
            **auth,
            "Upload-Length": str(len(vcf)),
            "Upload-Metadata": "filename cnVuLnZjZg==",
        },
    )
    assert status == 201
    location = headers["Location"]
    status, _, _ = call(
        location,
        method="PATCH",
        body=vcf,
        headers={**auth, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert status == 204
    file_url = f"{base}/api/v1/files/{location.rsplit('/', 1)[1]}"

    def ready() -> bool:
        _, _, body = call(file_url, headers=auth)
        state = json.loads(body)
        assert state["state"] != "failed", state["error"]
        return state["state"] == "ready" and state["metadata"]["records"] == 5000

    wait_until(ready, timeout_s=60, interval_s=0.5, what="the worker to ingest the upload")


def test_run_serves_pages_runs_tasks_and_stops_cleanly(tmp_path: Path) -> None:
    port, chain_port = free_port(), free_port()
    marker = f"GENEMARKET_RUN_ID={uuid.uuid4()}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CHAIN_RPC_URL"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "VAR_DIR": str(tmp_path / "var"),
            "PORT": str(port),
            "CHAIN_RPC_URL": f"http://127.0.0.1:{chain_port}",
            "HEARTBEAT_INTERVAL_S": "1",
            marker.split("=")[0]: marker.split("=")[1],
        }
    )
    log = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen(
        [sys.executable, "manage.py", "runstack"],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy_with_worker() -> bool:
            status, body = get(f"{base}/health")
            return status == 200 and json.loads(body)["worker_last_seen"] is not None

        wait_until(
            healthy_with_worker,
            timeout_s=90,
            interval_s=0.5,
            what="a green /health and a worker heartbeat",
        )
        status, home = get(f"{base}/")
        assert status == 200 and b"GeneMarket" in home
        assert get(f"{base}/api/docs/")[0] == 200
        assert get(f"{base}/api/schema/")[0] == 200
        upload_and_wait_until_ready(base)
        chain_status = json.loads(get(f"{base}/api/v1/chain")[1])
        assert chain_status["chain_id"] == 31337 and chain_status["market"]
        started = processes_with_marker(marker)
        assert len(started) >= 5  # runstack, anvil, worker (+ pool), beat, web
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            raise
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert run.returncode == 0, output
    assert "all processes stopped" in output
    assert "http://127.0.0.1" in output and "/api/docs/" in output
    wait_until(
        lambda: not processes_with_marker(marker),
        timeout_s=5,
        what="every process of the run to exit",
    )
