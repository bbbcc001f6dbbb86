"""Issue 5's acceptance: the whole flow across real processes.

PostgreSQL, a private Redis as the Celery broker, a Celery worker and beat, anvil, and the
web server, all started as `make run` starts them; the test talks to them only as users
do: over HTTP, with a key made by `crypt4gh-keygen`, a wallet linked by SIWE, a payment
sent from the researcher's own wallet with nothing but the voucher's `call`, and a
download decrypted by the reference `crypt4gh` command.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import jwt
import pytest
from web3 import Web3

from genomics import c4gh
from ledger.artifacts import load_artifact
from ledger.localchain import anvil_accounts
from tests.genomics import samples
from tests.support.stack import ApiUser, LiveStack, pay_voucher

pytestmark = pytest.mark.integration
PRICE = 40 * 10**18
FEE_BPS = 250


@pytest.fixture
def stack(shared_stack: LiveStack) -> LiveStack:
    return shared_stack


def renderings(name: str, key: bytes) -> dict[str, str]:
    """The ways a log line could print a raw key: hex in either case, base64 (standard and
    URL-safe, padding left off so that any padding matches) and Python's bytes repr."""
    return {
        f"{name} (hex)": key.hex(),
        f"{name} (HEX)": key.hex().upper(),
        f"{name} (base64)": base64.b64encode(key).decode().rstrip("="),
        f"{name} (base64url)": base64.urlsafe_b64encode(key).decode().rstrip("="),
        f"{name} (repr)": repr(key)[2:-1],
    }


def keygen(tmp: Path) -> tuple[Path, Path]:
    secret, public = tmp / "researcher.sec", tmp / "researcher.pub"
    subprocess.run(
        ["crypt4gh-keygen", "--nocrypt", "-f", "--sk", str(secret), "--pk", str(public)],
        check=True,
        capture_output=True,
        env={"PATH": str(Path(__import__("sys").executable).parent)},
    )
    return secret, public


def test_upload_list_request_approve_pay_grant_download_settle(
    stack: LiveStack, tmp_path: Path
) -> None:
    base = stack.base
    w3 = Web3(Web3.HTTPProvider(stack.chain_url))
    accounts = anvil_accounts()
    researcher_wallet, donor_wallet = accounts[3], accounts[4]

    # The donor uploads a VCF through tus; the worker ingests it.
    donor = ApiUser.register(base, "acceptance-donor", "donor")
    vcf = samples.write_variants(tmp_path / "donor.vcf", "w", records=3000).read_bytes()
    file_id = donor.upload_ready(vcf, "donor.vcf")
    ready = donor.json("GET", f"/api/v1/files/{file_id}")
    donor.link_wallet(donor_wallet)
    dataset = donor.list_dataset(
        file_id,
        title="Acceptance genome",
        description="One donor's variants.",
        price=PRICE,
        review="committee",
    )

    # The researcher registers a key from crypt4gh-keygen and links a wallet with SIWE.
    researcher = ApiUser.register(base, "acceptance-researcher", "researcher")
    secret, public = keygen(tmp_path)
    researcher.json("PUT", "/api/v1/me/crypt4gh-key", json={"public_key": public.read_text()})
    researcher.link_wallet(researcher_wallet)
    created = researcher.request_access(dataset["id"], statement="Population allele frequencies.")
    assert created["state"] == "submitted" and created["duo_match"]["fits"], created
    request_path = f"/api/v1/access-requests/{created['id']}"

    # A committee member approves; the worker signs the voucher.
    reviewer = ApiUser(base, "demo-reviewer", "demo-password-123")
    reviewer.json("POST", f"{request_path}/approve", json={"reason": "Fits the consent."})
    payable = researcher.wait_for(
        request_path, lambda r: r["state"] == "payable", what="the worker to sign the voucher"
    )
    voucher = payable["voucher"]
    assert int(voucher["amount"]) == PRICE

    # The researcher's own wallet: approve the amount, then send exactly the voucher's call.
    token = w3.eth.contract(
        address=Web3.to_checksum_address(voucher["token"]), abi=load_artifact("GeneToken")["abi"]
    )
    donor_before = token.functions.balanceOf(donor_wallet.address).call()
    pay_voucher(w3, researcher_wallet, voucher)

    granted = researcher.wait_for(
        request_path,
        lambda r: r["state"] in ("granted", "settled"),
        what="the indexer to see the payment and the worker to grant",
    )
    # The grant is a GA4GH Passport visa, signed by the worker, checked with our JWKS.
    [visa] = researcher.json("GET", "/api/v1/me/passport")["ga4gh_passport_v1"]
    jwks = jwt.PyJWKSet.from_dict(researcher.json("GET", "/.well-known/jwks.json"))
    claims = jwt.decode(
        visa,
        jwks[jwt.get_unverified_header(visa)["kid"]],
        algorithms=["ES256"],
        options={"require": ["iss", "sub", "iat", "exp", "jti"]},
    )
    assert claims["ga4gh_visa_v1"]["type"] == "ControlledAccessGrants", claims
    assert claims["ga4gh_visa_v1"]["value"].endswith(f"/datasets/{dataset['id']}/"), claims
    download = researcher.call("GET", granted["grant"]["files"][0]["download_url"])
    assert download.status_code == 200, download.text
    encrypted = tmp_path / "download.c4gh"
    encrypted.write_bytes(download.content)
    decrypted = subprocess.run(
        ["crypt4gh", "decrypt", "--sk", str(secret)],
        stdin=encrypted.open("rb"),
        capture_output=True,
        check=True,
        env={"PATH": str(Path(__import__("sys").executable).parent)},
    ).stdout
    assert hashlib.sha256(decrypted).hexdigest() == hashlib.sha256(vcf).hexdigest()
    assert ready["plaintext_sha256"] == hashlib.sha256(vcf).hexdigest()

    settled = researcher.wait_for(
        request_path,
        lambda r: r["state"] == "settled",
        what="the operator's release to be mined and indexed",
    )
    fee = PRICE * FEE_BPS // 10_000
    assert token.functions.balanceOf(donor_wallet.address).call() == donor_before + PRICE - fee
    actions = [step["action"] for step in settled["timeline"]]
    assert actions[:3] == ["submit", "approve", "voucher"], actions
    assert {"paid", "grant", "download", "settled"} <= set(actions), actions

    # The donor sees the earnings; the audit chain verifies.
    earnings = donor.json("GET", f"/api/v1/datasets/{dataset['id']}/earnings")
    assert int(earnings["released"]) == PRICE - fee and int(earnings["fee"]) == fee, earnings
    audit = stack.manage("verify_audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr

    # Nothing secret reached the logs of the whole run (web, worker, beat, anvil): above
    # all not the two keys the worker holds in memory, in any way a log line could print
    # them. (The researcher's secret key is not searched for: the server never has it.)
    log = stack.log_path.read_text(errors="replace")
    assert "marketplace.tasks.grant_access" in log  # the worker's lines are in it
    var = stack.tmp / "var"
    passphrase = (var / "keys" / "archive.passphrase").read_text().strip()
    archive_key_file = (var / "keys" / "archive.sec").read_bytes()
    archive_secret = c4gh.read_secret_key_file(archive_key_file, passphrase)
    secrets = {
        **renderings("operator key", bytes(accounts[1].key)),
        **renderings("archive secret key", archive_secret),
        "archive key file": b"".join(
            line for line in archive_key_file.splitlines() if not line.startswith(b"-----")
        ).decode(),
        "archive key passphrase": passphrase,
        "visa signing key file": b"".join(
            line
            for line in (var / "keys" / "visa-signing.pem").read_bytes().splitlines()
            if not line.startswith(b"-----")
        ).decode(),
        "SECRET_KEY": (var / "secret_key").read_text().strip(),
        "donor's API token": donor.headers["Authorization"].split()[1],
        "researcher's API token": researcher.headers["Authorization"].split()[1],
        "a password": "correct horse battery 42",
    }
    assert all(len(value) >= 16 for value in secrets.values()), secrets.keys()
    leaked = [name for name, value in secrets.items() if value in log]
    assert not leaked, f"secrets in the logs: {leaked}"
