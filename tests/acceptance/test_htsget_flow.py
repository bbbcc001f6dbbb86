"""Issue 17's htsget acceptance on the live stack (the shared one: web, worker, the worker's
htsget ticketer, beat, anvil, PostgreSQL, Redis, as `make run` starts them).

A donor uploads a bgzipped VCF and a BAM made from Debian's htslib-test data; a researcher
with a key from `crypt4gh-keygen` buys access; then the GA4GH reference htsget client (PyPI
`htsget`) fetches a region of each with a bearer token, the reference `crypt4gh decrypt`
(checking the archive as sender) turns it into a file, and bcftools/samtools find in it
exactly the records they find in that region of the original.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import htsget  # type: ignore[import-untyped]
import pytest
from eth_account import Account
from web3 import Web3

from ledger.localchain import anvil_accounts
from tests.acceptance.test_marketplace_flow import keygen
from tests.genomics import samples
from tests.support.stack import ApiUser, LiveStack, pay_voucher

pytestmark = pytest.mark.integration
BIN = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}


def lines(argv: list[str]) -> list[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.splitlines()


def test_reference_htsget_client_fetches_regions_that_decrypt_to_the_regions_records(
    shared_stack: LiveStack, tmp_path: Path
) -> None:
    base = shared_stack.base
    accounts = anvil_accounts()
    vcf = samples.write_variants(tmp_path / "cohort.vcf.gz", "wz", records=60_000)
    bam = samples.htslib_test_bam(tmp_path / "ce.bam", copies=20)
    subprocess.run(["bcftools", "index", "-t", str(vcf)], check=True)
    subprocess.run(["samtools", "index", str(bam)], check=True)

    donor = ApiUser.register(base, "htsget-donor", "donor")
    vcf_id = donor.upload_ready(vcf.read_bytes(), "cohort.vcf.gz")
    bam_id = donor.upload_ready(bam.read_bytes(), "ce.bam")
    donor.link_wallet(Account.create())  # a payout address needs no funds
    dataset = donor.json(
        "POST",
        "/api/v1/datasets",
        expect=201,
        json={
            "title": "htsget cohort",
            "description": "",
            "files": [vcf_id, bam_id],
            "duo_codes": ["DUO:0000042"],
            "price": str(10**18),
            "access_days": 30,
            "review": "auto",
        },
    )
    researcher = ApiUser.register(base, "htsget-researcher", "researcher")
    secret, public = keygen(tmp_path)
    researcher.json("PUT", "/api/v1/me/crypt4gh-key", json={"public_key": public.read_text()})
    # Anvil's accounts 3-9 belong to the other flows and journeys on the shared stack; 2 is
    # the market's treasury, a funded account that may pay like any other.
    researcher.link_wallet(accounts[2])
    created = researcher.request_access(dataset["id"])
    path = f"/api/v1/access-requests/{created['id']}"
    voucher = researcher.wait_for(path, lambda r: r["state"] == "payable", what="the voucher")
    pay_voucher(Web3(Web3.HTTPProvider(shared_stack.chain_url)), accounts[2], voucher["voucher"])
    researcher.wait_for(path, lambda r: r["state"] in ("granted", "settled"), what="the grant")

    archive = researcher.json("GET", "/api/v1/archive-key")["public_key"]
    archive_pub = tmp_path / "archive.pub"
    archive_pub.write_text(
        archive
        if "BEGIN" in archive
        else f"-----BEGIN CRYPT4GH PUBLIC KEY-----\n{archive}\n-----END CRYPT4GH PUBLIC KEY-----\n"
    )
    token = researcher.headers["Authorization"].split()[1]
    cases = [
        ("variants", vcf_id, vcf, ("chr1", 1_000_000, 1_200_000), ".vcf.gz"),
        ("reads", bam_id, bam, ("CHROMOSOME_I", 200_000, 202_000), ".bam"),
    ]
    for endpoint, file_id, original, (name, start, end), suffix in cases:
        fetched = tmp_path / f"{endpoint}.c4gh"
        with fetched.open("wb") as out:
            htsget.get(
                f"{base}/ga4gh/htsget/v1/{endpoint}/{file_id}?encryptionScheme=C4GH",
                out,
                reference_name=name,
                start=start,
                end=end,
                bearer_token=token,
                max_retries=0,
            )
        # Only the region's segments (plus the header's and the EOF's) are served.
        assert fetched.stat().st_size < original.stat().st_size * 0.8
        sliced = tmp_path / f"slice{suffix}"
        with fetched.open("rb") as source, sliced.open("wb") as target:
            subprocess.run(
                [
                    "crypt4gh",
                    "decrypt",
                    "--sk",
                    str(secret),
                    "--sender_pk",
                    str(archive_pub),
                ],
                stdin=source,
                stdout=target,
                check=True,
                env=BIN,
            )
        region = f"{name}:{start + 1}-{end}"
        if endpoint == "variants":
            subprocess.run(["bcftools", "index", "-t", str(sliced)], check=True)
            got = lines(["bcftools", "view", "-H", "-r", region, str(sliced)])
            want = lines(["bcftools", "view", "-H", "-r", region, str(original)])
        else:
            subprocess.run(["samtools", "index", str(sliced)], check=True)
            got = lines(["samtools", "view", str(sliced), region])
            want = lines(["samtools", "view", str(original), region])
        assert got == want and len(want) > 100, (endpoint, len(got), len(want))

    # A visa of this grant is a credential too; another caller's token finds nothing.
    [visa] = researcher.json("GET", "/api/v1/me/passport")["ga4gh_passport_v1"]
    by_visa = researcher.call(
        "GET",
        f"/ga4gh/htsget/v1/reads/{bam_id}?class=header",
        headers={"Authorization": f"Bearer {visa}"},
    )
    assert by_visa.status_code == 200, by_visa.text
    header = base64.b64decode(by_visa.json()["htsget"]["urls"][0]["url"].split(",", 1)[1])
    assert header.startswith(b"crypt4gh")
    assert researcher.call("GET", "/ga4gh/htsget/v1/reads/service-info").status_code == 200
