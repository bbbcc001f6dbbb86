"""The whole system as `make run` starts it (web, Celery worker, beat, anvil), but on a
fresh PostgreSQL database and a private Redis, for tests that must cross real process
boundaries: the acceptance flow of the marketplace and the browser journeys.

Everything listens on free loopback ports and is stopped, and the database dropped, when
the test ends; a service that cannot start fails the test loudly.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3

from tests.support.processes import RedisServer, descendants, free_port, wait_until

PROJECT = Path(__file__).resolve().parents[2]
TUS = {"Tus-Resumable": "1.0.0"}


def _server_url(database_url: str, name: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class LiveDatabase:
    """A PostgreSQL database of its own, on the server DATABASE_URL names."""

    def __init__(self) -> None:
        base = os.environ.get("DATABASE_URL", "")
        if not base.startswith(("postgres://", "postgresql://")):
            raise RuntimeError(
                "the live stack needs PostgreSQL: set DATABASE_URL (make test does) to "
                f"postgres://…, not {base!r}"
            )
        self.name = f"genemarket_live_{uuid.uuid4().hex[:10]}"
        self.admin_url = _server_url(base, "postgres")
        self.url = _server_url(base, self.name)

    def create(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class LiveStack:
    tmp: Path
    port: int = field(default_factory=free_port)
    chain_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # More environment for every process of the stack (failpoints, intervals).
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.database = LiveDatabase()
        self.redis = RedisServer(self.tmp)
        self.log_path = self.tmp / "stack.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chain_url(self) -> str:
        return f"http://127.0.0.1:{self.chain_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "CHAIN_"))}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.dev",
                "VAR_DIR": str(self.tmp / "var"),
                "PORT": str(self.port),
                "DATABASE_URL": self.database.url,
                "CELERY_BROKER_URL": self.redis.url,
                "CHAIN_RPC_URL": self.chain_url,
                "HEARTBEAT_INTERVAL_S": "1",
                "INDEXER_INTERVAL_S": "0.5",
                "SENDER_POLL_INTERVAL_S": "0.5",
                "PYTHONUNBUFFERED": "1",
                # One shared stack serves every journey and flow from one address: the
                # per-address limits of sign-up and wallet linking (tested on their own in
                # tests/core/test_throttling.py) would otherwise refuse the later ones.
                "THROTTLE_REGISTER": "1000/hour",
                "THROTTLE_WALLET": "1000/hour",
                # Beacon answers without noise, as in tests/discovery: a journey's rare query
                # is then charged and suppressed every time, not but for a draw above the
                # gate (the noise is tested in tests/disclosure).
                "DISCLOSURE_NOISE_SCALE": "0",
                **self.extra_env,
            }
        )
        return env

    def start(self) -> None:
        self.redis.start()
        self.database.create()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runstack"],
            cwd=PROJECT,
            env=self.env(),
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log()
            try:
                health = requests.get(f"{self.base}/health", timeout=5)
            except requests.RequestException:
                return False
            return health.status_code == 200 and health.json()["worker_last_seen"] is not None

        wait_until(ready, timeout_s=120, interval_s=0.5, what="the live stack to be healthy")

    def manage(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A management command against the stack's database, as an operator would run it."""
        return subprocess.run(
            [sys.executable, "manage.py", *argv],
            cwd=PROJECT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def sql_value(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first column of the first row of a query on the stack's database: what a
        test checks behind the API's back."""
        with psycopg.connect(self.database.url) as db:
            row = db.execute(sql, params).fetchone()
        assert row is not None, sql
        return row[0]

    def worker_pool(self) -> list[int]:
        """The pids of the worker's pool processes (children of `celery worker`): where
        tasks run, and what a fault test kills."""
        assert self.process is not None
        tree = descendants(self.process.pid)
        mains = {pid for pid, _, cmd in tree if "celery" in cmd and " worker" in cmd}
        return [pid for pid, parent, _ in tree if parent in mains]

    def kill_worker_pool(self) -> None:
        """SIGKILL every pool process: the tasks die where they stand (cannot be caught)."""
        pool = self.worker_pool()
        assert pool, f"no worker pool process found\n{self.log()}"
        for pid in pool:
            os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        try:
            if self.process is not None:
                self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
        finally:
            self.redis.stop()
            self.database.drop()


class ApiUser:
    """A person using the REST API of a live stack with their token."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        token = requests.post(
            f"{base}/api/v1/auth/token",
            json={"username": username, "password": password},
            timeout=10,
        )
        assert token.status_code == 200, token.text
        self.headers = {"Authorization": f"Token {token.json()['token']}"}

    @classmethod
    def register(cls, base: str, username: str, role: str) -> ApiUser:
        password = "correct horse battery 42"
        created = requests.post(
            f"{base}/api/v1/auth/register",
            json={
                "username": username,
                "password": password,
                "email": f"{username}@example.org",
                "role": role,
            },
            timeout=10,
        )
        assert created.status_code == 201, created.text
        return cls(base, username, password)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base}{path}", headers=headers, timeout=30, **kwargs)

    def json(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == expect, (response.status_code, response.text)
        return response.json()

    def upload(self, data: bytes, filename: str, chunk: int = 256 * 1024) -> str:
        """A tus upload in chunks; returns the file id."""
        name = base64.b64encode(filename.encode()).decode()
        created = self.call(
            "POST",
            "/api/v1/uploads/",
            headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"},
        )
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        for offset in range(0, len(data), chunk):
            sent = requests.patch(
                location,
                data=data[offset : offset + chunk],
                headers={
                    **self.headers,
                    **TUS,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
                timeout=30,
            )
            assert sent.status_code == 204, sent.text
        return location.rstrip("/").rsplit("/", 1)[1]

    def upload_ready(self, data: bytes, filename: str) -> str:
        """Upload through tus and wait for the worker's ingest; returns the file id."""
        file_id = self.upload(data, filename)
        ready = self.wait_for(
            f"/api/v1/files/{file_id}",
            lambda f: f["state"] in ("ready", "failed"),
            what="the worker to ingest the upload",
        )
        assert ready["state"] == "ready", ready
        return file_id

    def list_dataset(
        self,
        file_id: str,
        *,
        title: str,
        review: str,
        price: int,
        description: str = "",
        duo_codes: tuple[str, ...] = ("DUO:0000042",),
    ) -> Any:
        return self.json(
            "POST",
            "/api/v1/datasets",
            expect=201,
            json={
                "title": title,
                "description": description,
                "files": [file_id],
                "duo_codes": list(duo_codes),
                "price": str(price),
                "access_days": 30,
                "review": review,
            },
        )

    def request_access(
        self, dataset_id: str, *, purpose: str = "DUO:0000042", statement: str = "Research."
    ) -> Any:
        return self.json(
            "POST",
            "/api/v1/access-requests",
            expect=201,
            json={
                "dataset": dataset_id,
                "purpose_codes": [purpose],
                "statement": statement,
                "accept_terms": True,
            },
        )

    def link_wallet(self, account: LocalAccount) -> None:
        """Sign-In with Ethereum: the challenge signed by the wallet, as a browser wallet would."""
        message = self.json(
            "POST", "/api/v1/me/wallet/challenge", expect=201, json={"address": account.address}
        )["message"]
        signature = account.sign_message(encode_defunct(text=message)).signature.hex()
        linked = self.json(
            "POST",
            "/api/v1/me/wallet",
            json={"message": message, "signature": "0x" + signature.removeprefix("0x")},
        )
        assert linked["wallet_address"] == account.address

    def wait_for(self, path: str, predicate: Any, *, what: str, timeout_s: float = 60) -> Any:
        seen: dict[str, Any] = {}

        def check() -> bool:
            seen["body"] = self.json("GET", path)
            return bool(predicate(seen["body"]))

        try:
            wait_until(check, timeout_s=timeout_s, interval_s=0.25, what=what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last seen: {json.dumps(seen.get('body'))[:2000]}") from None
        return seen["body"]


def auto_listing_and_researcher(
    base: str,
    tmp: Path,
    *,
    prefix: str,
    donor_wallet: LocalAccount,
    researcher_wallet: LocalAccount,
    records: int = 300,
) -> tuple[Any, ApiUser, bytes]:
    """A donor's VCF listed with automatic review at 1 GENE, and a researcher with a key
    and a linked wallet: where a fault test's pipeline starts. Returns (dataset,
    researcher, the VCF's bytes)."""
    import base64
    import os

    from tests.genomics import samples

    donor = ApiUser.register(base, f"{prefix}-donor", "donor")
    vcf = samples.write_variants(tmp / f"{prefix}.vcf", "w", records=records).read_bytes()
    file_id = donor.upload_ready(vcf, f"{prefix}.vcf")
    donor.link_wallet(donor_wallet)
    dataset = donor.list_dataset(file_id, title=f"{prefix} cohort", review="auto", price=10**18)
    researcher = ApiUser.register(base, f"{prefix}-researcher", "researcher")
    researcher.json(
        "PUT",
        "/api/v1/me/crypt4gh-key",
        json={"public_key": base64.b64encode(os.urandom(32)).decode()},
    )
    researcher.link_wallet(researcher_wallet)
    return dataset, researcher, vcf


def requested_voucher(researcher: ApiUser, dataset_id: str) -> tuple[str, Any]:
    """A new access request and its signed voucher: (the request's API path, voucher)."""
    created = researcher.request_access(dataset_id)
    path = f"/api/v1/access-requests/{created['id']}"
    payable = researcher.wait_for(path, lambda r: r["state"] == "payable", what="the voucher")
    return path, payable["voucher"]


def gene_token(w3: Web3, voucher: dict[str, Any]) -> Any:
    """The payment token a voucher names, as a web3 contract (balances, approvals)."""
    from ledger.artifacts import load_artifact

    return w3.eth.contract(
        address=Web3.to_checksum_address(voucher["token"]), abi=load_artifact("GeneToken")["abi"]
    )


def send_transaction(w3: Web3, account: LocalAccount, to: str, data: str) -> Any:
    """Sign and send a call from `account`, as its own wallet would; the mined receipt."""
    tx = {
        "from": account.address,
        "to": Web3.to_checksum_address(to),
        "data": data,
        "nonce": w3.eth.get_transaction_count(account.address),
        "gas": 400_000,
        "maxFeePerGas": w3.eth.gas_price * 2 + 10**9,
        "maxPriorityFeePerGas": 10**9,
        "chainId": w3.eth.chain_id,
    }
    signed = account.sign_transaction(tx)  # type: ignore[arg-type]
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    assert receipt["status"] == 1, receipt
    return receipt


def pay_voucher(w3: Web3, account: LocalAccount, voucher: dict[str, Any]) -> Any:
    """Approve the voucher's amount, then send exactly its `call`; the payment's receipt."""
    token = gene_token(w3, voucher)
    market = Web3.to_checksum_address(voucher["market"])
    approve = token.encode_abi("approve", args=[market, int(voucher["amount"])])
    send_transaction(w3, account, voucher["token"], approve)
    return send_transaction(w3, account, voucher["call"]["to"], voucher["call"]["data"])


@contextmanager
def running_stack(tmp: Path, **options: Any) -> Iterator[LiveStack]:
    """A started live stack, stopped (and its database dropped) however the test ends."""
    live = LiveStack(tmp, **options)
    try:
        live.start()
        yield live
    finally:
        live.stop()
