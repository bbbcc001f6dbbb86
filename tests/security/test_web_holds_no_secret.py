"""The web process starts and serves with no access to the archive's secret key, its
passphrase, the operator key or the visa signing key: it runs here as `nobody`, with those
files readable by root alone, and the pages and API still answer (only workers hold
secrets). It connects to PostgreSQL as the web role (`create_web_role`), which cannot write
the tables the worker signs or discloses from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests

from tests.support.processes import free_port, spawn, stop, wait_until
from tests.support.stack import PROJECT, LiveDatabase

pytestmark = pytest.mark.integration
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


@pytest.fixture
def database() -> Iterator[LiveDatabase]:
    live = LiveDatabase()
    live.create()
    try:
        yield live
    finally:
        live.drop()
        with psycopg.connect(live.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{web_role(live)}"')


def web_role(database: LiveDatabase) -> str:
    return f"web_{database.name}"


def as_role(database: LiveDatabase, role: str) -> str:
    """The database URL with `role` as the user (whatever user the owner's URL names)."""
    parts = urlsplit(database.url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def check_web_role_privileges(database: LiveDatabase) -> None:
    """The web role writes what the web writes, and none of the signing tables."""
    with psycopg.connect(as_role(database, web_role(database)), autocommit=True) as conn:
        conn.execute("UPDATE marketplace_accessrequest SET flagged = flagged WHERE false")
        conn.execute("DELETE FROM genomics_grant WHERE false")
        for statement in (
            "INSERT INTO ledger_operatortransaction (chain_id, action, key, function, args, mac,"
            ' "to", data, sender, nonce, gas_limit, max_fee_per_gas,'
            " max_priority_fee_per_gas, raw_tx, tx_hash, tx_hashes, status, attempts, error,"
            " created_at, updated_at) VALUES (1, 'refund', 'x', 'refund', '[]', '', '', '', '',"
            " 0, 0, 0, 0, '', '', '[]', 'signed', 0, '', now(), now())",
            "UPDATE ledger_operatortransaction SET data = '0x' WHERE false",
            "UPDATE ledger_deployment SET address = '0x' WHERE false",
            "DELETE FROM ledger_chainevent WHERE false",
            "UPDATE ledger_indexercheckpoint SET block_number = 0 WHERE false",
            "UPDATE genomics_grant SET header = '' WHERE false",
            "UPDATE genomics_archivekey SET public_key = public_key WHERE false",
            "INSERT INTO marketplace_visakey (kid, public_jwk, created_at)"
            " VALUES ('web', '{}', now())",
            "UPDATE marketplace_visa SET token = '' WHERE false",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_the_web_serves_without_reading_any_secret(database: LiveDatabase) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        raise RuntimeError("this test runs the web as another user: it needs root and setpriv")
    # pytest's tmp_path sits under a folder only root may enter; nobody needs its own.
    tmp_path = Path(tempfile.mkdtemp(prefix="web-no-secret-", dir="/tmp"))
    tmp_path.chmod(0o755)
    var = tmp_path / "var"
    keys = tmp_path / "keys"
    var.mkdir()
    keys.mkdir(mode=0o700)
    var.chmod(0o777)  # the web's own scratch space: its broker folder, its storage
    tmp_path.chmod(0o755)
    env = {
        # No COVERAGE_*: the coverage of a CI run writes beside the checkout, where nobody
        # may not write.
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CELERY_", "CHAIN_", "COVERAGE"))
        },
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DATABASE_URL": as_role(database, web_role(database)),
        "VAR_DIR": str(var),
        "SECRET_KEY": "web-process-test-" + "x" * 60,
        "ARCHIVE_SECRET_KEY_FILE": str(keys / "archive.sec"),
        "ARCHIVE_KEY_PASSPHRASE_FILE": str(keys / "archive.passphrase"),
        "OPERATOR_KEY_FILE": str(keys / "operator.key"),
        "VISA_SIGNING_KEY_FILE": str(keys / "visa-signing.pem"),
        "CHAIN_RPC_URL": f"http://127.0.0.1:{free_port()}",
        "HOME": str(var),
    }
    python = sys.executable
    # The operator's own folder and the database owner's URL.
    root_env = {**env, "VAR_DIR": str(tmp_path / "root-var"), "DATABASE_URL": database.url}
    for argv in (
        ["migrate"],
        ["create_archive_key"],
        ["create_visa_key"],
        ["create_web_role", "--role", web_role(database)],
    ):
        done = subprocess.run(
            [python, "manage.py", *argv], cwd=PROJECT, env=root_env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    (keys / "operator.key").write_text("0x" + "11" * 32)
    for secret in keys.iterdir():
        secret.chmod(0o600)
        refused = subprocess.run([*AS_NOBODY, "cat", str(secret)], capture_output=True, check=False)
        assert refused.returncode != 0, f"{secret} is readable by nobody"

    port = free_port()
    web = spawn(
        [*AS_NOBODY, python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        log=tmp_path / "web.log",
        env=env,
        cwd=PROJECT,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{base}/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(up, timeout_s=60, what="the web process running as nobody")
        except TimeoutError:
            raise AssertionError((tmp_path / "web.log").read_text()[-3000:]) from None
        for path in ("/", "/datasets/", "/accounts/register/", "/api/v1/datasets"):
            assert requests.get(f"{base}{path}", timeout=10).status_code == 200, path
        archive = requests.get(f"{base}/api/v1/archive-key", timeout=10)
        assert archive.status_code == 200 and archive.json()["public_key"]
        jwks = requests.get(f"{base}/.well-known/jwks.json", timeout=10)
        assert jwks.status_code == 200 and len(jwks.json()["keys"]) == 1
        # The web writes through its role: a researcher registers.
        registered = requests.post(
            f"{base}/api/v1/auth/register",
            json={
                "username": "webrole",
                "password": "a long enough passphrase 42",
                "email": "webrole@example.org",
                "role": "researcher",
            },
            timeout=10,
        )
        assert registered.status_code == 201, registered.text
        check_web_role_privileges(database)
    finally:
        stop(web)
    log = (tmp_path / "web.log").read_text(errors="replace")
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert "Traceback" not in log, log[-3000:]
