"""Download throughput: a 1 GiB grant (header + payload) streamed by the real server
(gunicorn, the project's settings and URLs) through the researcher's own route,
`GET /api/v1/access-requests/{id}/files/{file_id}` with their API token (authentication,
the live-grant check and the audit entry included), vs nginx serving the same payload as a
plain file.

    .venv/bin/python bench/download.py [--size-mib 1024] [--repeat 3]

Needs nginx (Debian package `nginx`; `make bench` installs it). Target: ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.common import MIB, django_scratch, start_gunicorn, table
from tests.support.processes import free_port


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.stdout not in {"000", ""}:
            return
        time.sleep(0.2)
    raise TimeoutError(url)


def fetch_seconds(url: str, expected: int, token: str | None = None) -> float:
    auth = ["-H", f"Authorization: Token {token}"] if token else []
    done = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{time_total} %{size_download} %{http_code}",
            *auth,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, size, status = done.stdout.split()
    if status != "200" or int(size) != expected:
        raise RuntimeError(f"{url}: status {status}, {size} bytes, expected {expected}")
    return float(seconds)


def granted_request(stored):
    """A researcher with a live granted request on a dataset holding `stored`, and their
    grant: (grant, the download route's path, the researcher's API token)."""
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from bench.support.vault import owner
    from genomics import c4gh
    from genomics.services.grants import grant_create
    from marketplace.models import AccessRequest, Role, User
    from marketplace.services.datasets import dataset_create

    stored.metadata = {"format": "VCF", "reference_build": "GRCh38"}
    stored.format = "VCF"
    stored.plaintext_sha256 = "0" * 64
    stored.save()
    dataset = dataset_create(
        donor=owner(),
        title="Download benchmark cohort",
        description="One large file.",
        files=[stored.pk],
        duo_codes=["DUO:0000042"],
        price="1000",
        access_days=30,
        review="auto",
    )
    researcher = User.objects.create(username="bench-researcher", role=Role.RESEARCHER)
    researcher.crypt4gh_public_key = c4gh.generate_keypair()[1]
    researcher.save()
    grant = grant_create(file=stored, recipient_public_key=bytes(researcher.crypt4gh_public_key))
    now = timezone.now()
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        purpose_codes=[{"code": "DUO:0000042", "value": ""}],
        statement="Benchmark.",
        amount=1000,
        state=AccessRequest.State.GRANTED,
        duo_match={"fits": True},
        granted_at=now,
        expires_at=now + timedelta(days=30),
    )
    url = f"/api/v1/access-requests/{request.pk}/files/{stored.pk}"
    return grant, url, Token.objects.create(user=researcher).key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("nginx"):
        sys.exit("nginx is not installed: `apt-get install nginx` (make bench does it)")
    scratch = django_scratch()
    from bench.support.vault import stored_file
    from genomics.models import PayloadPart
    from marketplace.models import AuditEntry

    stored = stored_file(args.size_mib * MIB, filename="big.vcf")
    grant, url, token = granted_request(stored)
    total = len(bytes(grant.header)) + stored.payload_size
    media = Path(os.environ["MEDIA_ROOT"])
    static = scratch / "nginx-root"
    static.mkdir()
    with (static / "payload.c4gh").open("wb") as out:
        for part in PayloadPart.objects.filter(file=stored).order_by("payload_offset"):
            with (media / part.storage_name).open("rb") as source:
                shutil.copyfileobj(source, out, 16 * MIB)

    app_port, nginx_port = free_port(), free_port()
    server = start_gunicorn(app_port, "config.settings.test")
    conf = scratch / "nginx.conf"
    # As root, nginx's workers would drop to an account that cannot read the scratch folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}worker_processes 1; daemon off; pid {scratch}/nginx.pid; "
        f"error_log {scratch}/nginx.err;\n"
        "events {}\nhttp { access_log off; sendfile on; tcp_nopush on;\n"
        f"  client_body_temp_path {scratch}/nginx-tmp; proxy_temp_path {scratch}/nginx-tmp;\n"
        f"  fastcgi_temp_path {scratch}/nginx-tmp; uwsgi_temp_path {scratch}/nginx-tmp;\n"
        f"  scgi_temp_path {scratch}/nginx-tmp;\n"
        f"  server {{ listen 127.0.0.1:{nginx_port}; root {static}; }} }}\n"
    )
    nginx = subprocess.Popen(
        ["nginx", "-c", str(conf), "-e", f"{scratch}/nginx.err"], start_new_session=True
    )
    try:
        app_url = f"http://127.0.0.1:{app_port}{url}"
        nginx_url = f"http://127.0.0.1:{nginx_port}/payload.c4gh"
        wait_for(f"http://127.0.0.1:{app_port}/health")  # the route itself would log a 401
        wait_for(nginx_url)
        audited = AuditEntry.objects.filter(action="request.download").count()
        ours = statistics.median(fetch_seconds(app_url, total, token) for _ in range(args.repeat))
        # The route's own audit: one entry per download, or this timed some other path.
        downloads = AuditEntry.objects.filter(action="request.download").count() - audited
        assert downloads == args.repeat, (downloads, args.repeat)
        anchor = statistics.median(
            fetch_seconds(nginx_url, stored.payload_size) for _ in range(args.repeat)
        )
    finally:
        for process in (server, nginx):
            os.killpg(process.pid, 15)
            process.wait()
    rows = [
        [
            "gunicorn, researcher's download route",
            f"{total / MIB:,.0f} MiB",
            f"{ours:.2f} s",
            f"{total / ours / 1e9:.2f} GB/s",
        ],
        [
            "nginx, payload file",
            f"{stored.payload_size / MIB:,.0f} MiB",
            f"{anchor:.2f} s",
            f"{stored.payload_size / anchor / 1e9:.2f} GB/s",
        ],
        ["ratio (ours / nginx)", "", "", f"{(total / ours) / (stored.payload_size / anchor):.2f}"],
    ]
    table(
        f"Download over loopback, median of {args.repeat} (target: ratio >= 0.5)",
        ["server", "bytes", "time", "throughput"],
        rows,
    )


if __name__ == "__main__":
    main()
