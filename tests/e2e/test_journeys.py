"""One journey per role, in a real browser against the live system.

- The donor uploads a real VCF (with a reload in the middle: the upload resumes), links a
  wallet, lists the file and finds it in the catalogue.
- The reviewer signs in with a second factor, works the review queue and approves a
  request with a reason, then looks at the audit log and the chain.
- The researcher registers a key made by crypt4gh-keygen, links a wallet, asks the
  catalogue's Beacon which datasets allowing HMB contain a variant (and sees their privacy
  budget go down for a variant nobody may reveal), requests, pays with one permit
  signature, and downloads a file the reference crypt4gh decrypts.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import Page, Route, expect

from ledger.localchain import anvil_accounts
from tests.discovery import variants
from tests.e2e.conftest import Watch, shot
from tests.e2e.wallet import BrowserWallet
from tests.genomics import samples
from tests.support.stack import ApiUser, LiveStack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
PASSWORD = "correct horse battery 42"
BIN = str(Path(sys.executable).parent)


def register(page: Page, base: str, username: str, role: str) -> None:
    page.goto(f"{base}/accounts/register/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator(f"input[name=role][value={role}]").check()
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".messages")).to_contain_text("Welcome")


def link_wallet(page: Page, base: str) -> None:
    page.goto(f"{base}/profile/")
    page.get_by_role("button", name=re.compile("Link (a|another) wallet")).click()
    expect(page.locator("[data-wallet-current]")).to_contain_text("Linked: 0x")


def listed_dataset(
    live: LiveStack, tmp: Path, *, name: str, review: str, wallet: int
) -> tuple[dict, bytes]:
    """A donor and a listing made through the API: the part of the world another role's
    journey starts from."""
    donor = ApiUser.register(live.base, name, "donor")
    vcf = samples.write_variants(tmp / f"{name}.vcf", "w", records=1500).read_bytes()
    file_id = donor.upload_ready(vcf, f"{name}.vcf")
    donor.link_wallet(anvil_accounts()[wallet])
    dataset = donor.list_dataset(
        file_id,
        title=f"{name} hypertension cohort",
        description="Blood pressure study, variants on GRCh38.",
        duo_codes=("DUO:0000006",),
        price=12 * 10**18,
        review=review,
    )
    return dataset, vcf


def test_donor_uploads_resumes_after_a_reload_lists_and_finds_it(
    live: LiveStack, watched: tuple[Page, Watch], tmp_path: Path
) -> None:
    page, _ = watched
    base = live.base
    wallet = BrowserWallet(anvil_accounts()[6], live.chain_url)
    wallet.install(page)
    register(page, base, "e2e-donor", "donor")

    # A VCF of several tus chunks; the server is slowed so the reload lands mid-upload.
    vcf = samples.write_variants(tmp_path / "family.vcf", "w", records=500_000)
    size = vcf.stat().st_size
    assert size > 2 * 8 * 1024 * 1024, size

    def slow_patch(route: Route) -> None:
        if route.request.method == "PATCH":
            time.sleep(1.0)
        route.continue_()

    page.route("**/api/v1/uploads/**", slow_patch)
    page.goto(f"{base}/files/")
    page.get_by_label("File").set_input_files(str(vcf))
    page.get_by_role("button", name="Upload").click()
    status = page.locator("[data-upload-status]")
    expect(status).to_contain_text("Uploading", timeout=30_000)
    bar = page.locator("progress:not([hidden])")
    deadline = time.monotonic() + 30
    while bar.evaluate("el => el.value") <= 0:  # (wait_for_function would need eval: CSP)
        assert time.monotonic() < deadline, "the progress bar never moved"
        page.wait_for_timeout(100)
    shot(page, "upload-progress")
    page.reload()  # the upload stops here, part of it stored

    page.unroute("**/api/v1/uploads/**")
    page.get_by_label("File").set_input_files(str(vcf))
    page.get_by_role("button", name="Upload").click()
    expect(status).to_contain_text("Resumed and uploaded", timeout=120_000)
    ready = page.locator("#files-table .state-ready")
    expect(ready).to_have_count(1, timeout=180_000)
    expect(page.locator("#files-table tbody tr")).to_have_count(1)  # resumed, not re-sent
    shot(page, "files")

    # No wallet yet: the header says so, and the listing form leads to linking one.
    expect(page.locator("[data-header-wallet]")).to_have_text("No wallet linked")
    page.goto(f"{base}/datasets/new/")
    expect(page.locator("[data-no-payout-wallet]")).to_contain_text("Link a payout wallet first")
    page.get_by_role("link", name="Link a wallet on your profile").click()
    page.wait_for_url(re.compile(r"/profile/#wallet$"))
    link_wallet(page, base)
    page.goto(f"{base}/datasets/new/")
    expect(page.locator("[data-header-wallet]")).to_contain_text("Wallet 0x")
    expect(page.locator("[data-no-payout-wallet]")).to_have_count(0)
    page.get_by_label("Title").fill("Family trio variants")
    page.get_by_label("Description").fill("A family of three, whole-genome variants, GRCh38.")
    page.locator("input[name=file_ids]").first.check()
    page.locator("input[name=permission][value='DUO:0000042']").check()
    page.locator("input[name=modifiers][value='DUO:0000019']").check()
    page.get_by_label("Price (GENE)").fill("20")
    page.get_by_label("Access period (days)").fill("180")
    page.locator("input[name=review][value=committee]").check()
    page.get_by_role("button", name="List the dataset").click()
    expect(page.locator("h1")).to_have_text("Family trio variants")
    expect(page.locator(".big-price")).to_contain_text("20")
    expect(page.get_by_text("publication required")).to_be_visible()
    shot(page, "dataset")

    page.goto(f"{base}/datasets/")
    page.get_by_role("searchbox", name="Search").fill("trio")
    expect(page.locator("#results .dataset-card")).to_have_count(1)
    expect(page.locator("#results")).to_contain_text("Family trio variants")
    shot(page, "catalogue")
    page.goto(f"{base}/dashboard/")
    expect(page.locator("table").first).to_contain_text("Family trio variants")

    # A phone-width screen: nothing wider than the screen, the menu still reachable.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/datasets/?q=trio", "/dashboard/", "/files/"):
        page.goto(f"{base}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
    expect(page.get_by_role("link", name="Catalogue")).to_be_visible()
    shot(page, "catalogue-phone")


def test_reviewer_passes_totp_and_approves_with_a_reason(
    live: LiveStack, watched: tuple[Page, Watch], tmp_path: Path
) -> None:
    page, _ = watched
    base = live.base
    dataset, _ = listed_dataset(
        live, tmp_path, name="e2e-review-donor", review="committee", wallet=5
    )
    researcher = ApiUser.register(base, "e2e-review-researcher", "researcher")
    created = researcher.request_access(
        dataset["id"], purpose="DUO:0000006", statement="Genetics of hypertension in adults."
    )

    page.goto(f"{base}/accounts/login/?next=/review/")
    page.get_by_label("Username").fill("demo-reviewer")
    page.get_by_label("Password").fill("demo-password-123")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_contain_text("second factor")
    secret = page.locator("[data-totp-secret]").inner_text().strip()
    code = TOTP(base64.b32decode(secret)).token()
    page.get_by_label("Code from your authenticator app").fill(f"{code:06d}")
    page.get_by_role("button", name="Continue").click()

    expect(page.locator("h1")).to_have_text("Review queue")
    expect(page.locator("table")).to_contain_text("e2e-review-donor hypertension cohort")
    shot(page, "review-queue")
    # An older tab on the same request, opened before the decision.
    older_tab = page.context.new_page()
    older_tab.goto(f"{base}/requests/{created['id']}/")
    page.goto(f"{base}/requests/{created['id']}/")
    expect(page.locator(".fit.yes")).to_be_visible()
    page.get_by_label("Reason").fill("Purpose fits HMB; ethics approval seen.")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("Approved")
    expect(page.locator("#request-status")).to_contain_text("Approved")
    shot(page, "request-approved")
    # The stale tab's rejection is refused, naming the approval; the approval stands.
    older_tab.get_by_label("Reason").fill("No ethics approval.")
    older_tab.get_by_role("button", name="Reject").click()
    expect(older_tab.locator(".form-errors")).to_contain_text("was approved by demo-reviewer")
    older_tab.get_by_role("link", name="See the request as it is now").click()
    expect(older_tab.locator("#request-status")).not_to_contain_text("Rejected")
    older_tab.close()

    page.goto(f"{base}/audit/")
    expect(page.locator(".ok-card")).to_contain_text("Verified")
    expect(page.locator("table").last).to_contain_text("request.approve")
    shot(page, "audit-log")
    page.goto(f"{base}/chain/")
    expect(page.locator(".facts")).to_contain_text("31337")
    shot(page, "chain")


def test_researcher_registers_a_key_links_a_wallet_requests_pays_and_decrypts(
    live: LiveStack, watched: tuple[Page, Watch], tmp_path: Path
) -> None:
    page, watch = watched
    base = live.base
    dataset, vcf = listed_dataset(live, tmp_path, name="e2e-pay-donor", review="auto", wallet=8)
    wallet = BrowserWallet(anvil_accounts()[7], live.chain_url)
    wallet.install(page)
    register(page, base, "e2e-researcher", "researcher")

    secret, public = tmp_path / "researcher.sec", tmp_path / "researcher.pub"
    subprocess.run(
        ["crypt4gh-keygen", "--nocrypt", "-f", "--sk", str(secret), "--pk", str(public)],
        check=True,
        capture_output=True,
        env={"PATH": BIN},
    )
    page.goto(f"{base}/profile/")
    page.get_by_label("Paste your public key").fill(public.read_text())
    page.get_by_role("button", name="Save the key").click()
    expect(page.locator(".messages")).to_contain_text("public key is saved")
    link_wallet(page, base)
    shot(page, "profile")

    # Discovery before purchase: the catalogue asks the Beacon (same code path as the API).
    beacon_donor = ApiUser.register(base, "e2e-beacon-donor", "donor")
    sites = variants.write_sites(
        tmp_path / "brca1.vcf",
        [("chr17", 43044295, "A", "G", 150, 400), ("chr17", 43045000, "C", "T", 2, 400)],
    )
    beacon_file = beacon_donor.upload_ready(sites, "brca1-summary.vcf")
    beacon_donor.link_wallet(anvil_accounts()[9])
    beacon_listing = beacon_donor.list_dataset(
        beacon_file, title="BRCA1 carriers summary", review="committee", price=10**18
    )
    page.goto(f"{base}/datasets/")
    page.get_by_label("Consent allows").select_option("DUO:0000006")  # GRU allows HMB
    page.get_by_label("Contains variant").fill("17:43044295 A>G")
    page.get_by_role("button", name="Ask the Beacon").click()
    found = page.locator("#variant-results")
    expect(found).to_contain_text(beacon_listing["title"])
    budget = found.locator("[data-budget-remaining]")
    before = int(budget.get_attribute("data-budget-remaining") or "-1")
    shot(page, "catalogue-variant")
    page.get_by_label("Contains variant").fill("17:43045000 C>T")  # rare: never revealed
    page.get_by_role("button", name="Ask the Beacon").click()
    expect(found).not_to_contain_text(beacon_listing["title"])
    expect(budget).to_have_attribute("data-budget-remaining", str(before - 1))

    page.goto(f"{base}/datasets/?q=hypertension")
    page.get_by_role("link", name=dataset["title"]).click()
    page.get_by_role("link", name="Request access").click()
    page.locator("input[name=permission][value='DUO:0000006']").check()
    page.get_by_label("Research statement").fill("Blood pressure variants in adults.")
    page.locator("input[name=accept_terms]").check()
    page.get_by_role("button", name="Send the request").click()

    # Approved at once (auto review); the page reloads itself when the voucher is signed.
    expect(page.locator("[data-pay-panel]")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Pay with one signature").click()
    expect(page.locator("[data-pay-steps]")).to_contain_text("Payment: mined in block")
    shot(page, "payment")
    assert len(wallet.sent) == 1  # permit: one transaction, no separate approval

    expect(page.locator("#request-status")).to_have_attribute(
        "data-state", re.compile("granted|settled"), timeout=90_000
    )
    link = page.get_by_role("link", name=re.compile(r"Download .*\.c4gh"))
    with page.expect_download() as caught:
        link.click()
    encrypted = tmp_path / "download.c4gh"
    caught.value.save_as(encrypted)
    decrypted = subprocess.run(
        ["crypt4gh", "decrypt", "--sk", str(secret)],
        stdin=encrypted.open("rb"),
        capture_output=True,
        check=True,
        env={"PATH": BIN},
    ).stdout
    assert hashlib.sha256(decrypted).hexdigest() == hashlib.sha256(vcf).hexdigest()
    expect(page.locator("pre.command").first).to_contain_text("crypt4gh decrypt --sk")
    shot(page, "granted")
    assert not watch.problems
