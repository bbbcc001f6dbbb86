"""One journey per role, in a real browser against the live system.

- The donor uploads a real VCF (with a reload in the middle: the upload resumes), links a
  wallet, lists the file and finds it in the catalogue.
- The reviewer signs in with a second factor, works the review queue and approves a
  request with a reason, then looks at the audit log and the chain.
- The researcher registers a key made by crypt4gh-keygen, links a wallet, asks the
  catalogue's Beacon which datasets allowing HMB contain a variant (and sees their privacy
  budget go down for a variant nobody may reveal), sees the fit of the purpose live and
  cannot send one that cannot fit, requests (back + send again makes no second request),
  pays with one permit signature, and downloads a file the reference crypt4gh decrypts;
  the donor then sees that download in their access history and erases the data.
- A committee (issue 19): the admin makes a two-member DAC with a chair on its pages
  (its members plain accounts, who then pass a second factor); a member votes from their
  queue, the chair returns the request, the researcher changes and
  resubmits it on the returned-request page, the member votes again and the chair decides.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django_otp.oath import TOTP
from eth_account import Account
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
    live: LiveStack,
    tmp: Path,
    *,
    name: str,
    review: str,
    wallet: int,
    duo_codes: tuple[str, ...] = ("DUO:0000006",),
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
        duo_codes=duo_codes,
        price=12 * 10**18,
        review=review,
    )
    return dataset, vcf


PHONE = {"width": 390, "height": 844}


def assert_fits_the_screen(page: Page, where: str) -> None:
    """Nothing scrolls sideways, the page nor any table, and every state badge in a table
    is inside the screen (issue 16 §12: tables hid the state on a phone)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, (where, overflow)
    tables = page.evaluate(
        "[...document.querySelectorAll('.table-wrap')].map(w => w.scrollWidth - w.clientWidth)"
    )
    assert all(extra <= 1 for extra in tables), (where, tables)
    width = page.evaluate("window.innerWidth")
    states = page.locator("table .state")
    assert states.count() > 0 or page.locator("table").count() == 0, where
    for index in range(states.count()):
        box = states.nth(index).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (
            where,
            box,
        )
        expect(states.nth(index)).to_be_visible()


def assert_search_button_in_line(page: Page) -> None:
    """The catalogue's Search button sits beside its box, not on a line of its own below
    the filters (issue 16 §12)."""
    box = page.get_by_role("searchbox", name="Search").bounding_box()
    button = page.get_by_role("button", name="Search", exact=True).bounding_box()
    assert box is not None and button is not None
    middle = button["y"] + button["height"] / 2
    assert box["y"] <= middle <= box["y"] + box["height"], (box, button)
    assert button["x"] >= box["x"] + box["width"] - 1, (box, button)


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
    page.get_by_role("button", name="Upload", exact=True).click()
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
    page.get_by_role("button", name="Upload", exact=True).click()
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
    assert_search_button_in_line(page)
    shot(page, "catalogue")
    page.goto(f"{base}/dashboard/")
    expect(page.locator("table").first).to_contain_text("Family trio variants")

    # A phone-width screen: nothing wider than the screen, the menu still reachable, each
    # table's state on screen without scrolling sideways (issue 16 §12).
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    for path in ("/datasets/?q=trio", "/dashboard/", "/files/"):
        page.goto(f"{base}{path}")
        assert_fits_the_screen(page, path)
    shot(page, "files-phone")
    page.goto(f"{base}/datasets/?q=trio")
    assert_search_button_in_line(page)
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
    answer_second_factor(page, "demo-reviewer")

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
    # HMB, with IRB approval as the consent's condition (DUO:0000021).
    dataset, vcf = listed_dataset(
        live,
        tmp_path,
        name="e2e-pay-donor",
        review="auto",
        wallet=8,
        duo_codes=("DUO:0000006", "DUO:0000021"),
    )
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
    # The fit is checked live as the codes are chosen, the consent's condition (IRB) comes
    # ticked, and a purpose that cannot fit cannot be sent (issue 16 §7).
    request_form = page.url
    send = page.get_by_role("button", name="Send the request")
    fit = page.locator("#fit [data-fit]")
    expect(page.locator("input[name=modifiers][value='DUO:0000021']")).to_be_checked()
    page.get_by_label("Research statement").fill("Blood pressure variants in adults.")
    page.locator("input[name=accept_terms]").check()
    page.locator("input[name=permission][value='DUO:0000011']").check()  # ancestry research
    expect(fit).to_have_attribute("data-fit", "does_not_fit")
    expect(page.locator("#fit")).to_contain_text("is outside it")
    expect(send).to_be_disabled()
    page.locator("input[name=modifiers][value='DUO:0000021']").uncheck()
    page.locator("input[name=permission][value='DUO:0000006']").check()
    expect(page.locator("#fit")).to_contain_text("The consent requires IRB")
    expect(send).to_be_disabled()
    page.locator("input[name=modifiers][value='DUO:0000021']").check()
    expect(fit).to_have_attribute("data-fit", "fits")
    shot(page, "request-form-fit")
    send.click()
    expect(page.locator("#request-status")).to_be_visible()
    request_page = page.url

    # Back + send again: no second request; the form links to the one already open.
    page.go_back()
    page.locator("input[name=permission][value='DUO:0000006']").check()  # kept, or again
    page.locator("input[name=modifiers][value='DUO:0000021']").check()
    page.get_by_label("Research statement").fill("Blood pressure variants in adults.")
    page.locator("input[name=accept_terms]").check()
    expect(page.locator("#fit [data-fit]")).to_have_attribute("data-fit", "fits")
    page.get_by_role("button", name="Send the request").click()
    expect(page.locator("[data-open-request]")).to_contain_text("already have an open request")
    # That refusal was the point: the 409 and the console's note of it are expected.
    watch.problems.remove(f"HTTP 409: {request_form}")
    watch.problems.remove(
        "console error: Failed to load resource: the server responded with a status of 409 "
        "(Conflict)"
    )
    page.locator("[data-open-request]").get_by_role("link", name="Follow it on its page").click()
    assert page.url == request_page

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
    command = page.locator("pre.command").first
    expect(command).to_contain_text("crypt4gh decrypt --sk")
    shot(page, "granted")
    # The copy button puts the whole command on the clipboard (issue 16 §12).
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.locator(".command-box").first.get_by_role("button", name="Copy the command").click()
    expect(page.locator(".command-box").first.locator("[data-copy]")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == command.inner_text() and copied.startswith("crypt4gh decrypt --sk")
    assert vcf_name_in(copied)
    # On a phone the command wraps: nothing of it is hidden behind a scroll bar.
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    clipped = command.evaluate("el => el.scrollWidth - el.clientWidth")
    assert clipped <= 1, clipped
    box = command.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    page.goto(f"{base}/requests/")
    assert_fits_the_screen(page, "/requests/")
    page.set_viewport_size({"width": 1280, "height": 900})  # back to the desktop

    # The donor's rights (issue 19 §5, §6): who accessed the data, then its erasure after a
    # confirmation that counts what will happen.
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{base}/accounts/login/?next=/my-data/")
    page.get_by_label("Username").fill("e2e-pay-donor")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    history = page.locator("#disclosures")
    expect(history).to_contain_text("e2e-researcher")
    expect(history).to_contain_text("Download")
    expect(history).to_contain_text("e2e-pay-donor.vcf")
    shot(page, "access-history")
    page.get_by_role("link", name="Erase my data…").click()
    counts = page.locator("#erase-counts")
    expect(counts.locator(".count-files")).to_have_text("1")
    expect(counts.locator(".count-headers")).to_have_text("2")  # the file's and the grant's
    expect(counts.locator(".count-delivered")).to_have_text("1")
    expect(page.locator("#cannot-undo")).to_contain_text("cannot take back copies")
    expect(page.locator("#cannot-undo .count-copies")).to_have_text("1")
    shot(page, "erase-confirm")
    page.get_by_label("I understand that this cannot be undone.").check()
    page.get_by_role("button", name="Erase", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Erasure requested")
    for _ in range(60):  # the worker erases within seconds
        if page.locator(".erasure-state").first.inner_text() == "Done":
            break
        time.sleep(1)
        page.reload()
    expect(page.locator("#erasures")).to_contain_text("destroyed")
    shot(page, "erased")
    researcher = ApiUser(base, "e2e-researcher", PASSWORD)
    mine = researcher.json("GET", "/api/v1/access-requests")["results"][0]
    assert mine["state"] == "revoked", mine["state"]
    file_id = dataset["metadata"]["files"][0]["id"]
    gone = researcher.call("GET", f"/api/v1/access-requests/{mine['id']}/files/{file_id}")
    assert gone.status_code == 404
    assert researcher.json("GET", "/api/v1/me/passport")["ga4gh_passport_v1"] == []
    assert not watch.problems


def vcf_name_in(command: str) -> bool:
    """The command names the download and the plaintext hash: it was copied to its end."""
    return ".c4gh" in command and re.search(r"# [0-9a-f]{64}\s*$", command) is not None


def test_admin_passes_the_second_factor_delists_a_dataset_and_recovers_with_a_code(
    live: LiveStack, watched: tuple[Page, Watch], tmp_path: Path
) -> None:
    """Issue 16 §6 and §11: the admin lands on the review queue after the second factor,
    makes recovery codes, delists a dataset from its page (the waiting request closes, the
    dataset leaves the catalogue and the API), and later signs in with a recovery code."""
    page, _ = watched
    base = live.base
    donor = ApiUser.register(base, "e2e-delist-donor", "donor")
    vcf = samples.write_variants(tmp_path / "delist.vcf", "w", records=300).read_bytes()
    file_id = donor.upload_ready(vcf, "delist.vcf")
    donor.link_wallet(Account.create())
    dataset = donor.list_dataset(
        file_id, title="Duplicate exome panel", review="committee", price=3 * 10**18
    )
    researcher = ApiUser.register(base, "e2e-delist-researcher", "researcher")
    waiting = researcher.request_access(dataset["id"], statement="Exome panel reuse.")

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin-change-me")
    page.get_by_role("button", name="Log in").click()
    answer_second_factor(page, "admin")
    expect(page.locator("h1")).to_have_text("Review queue")  # the workspace, not the home page

    page.goto(f"{base}/profile/")
    page.get_by_role("link", name="Recovery codes").click()
    page.get_by_role("button", name="Make recovery codes").click()
    codes = page.locator("[data-recovery-codes] code").all_inner_texts()
    assert len(codes) == 10

    page.goto(f"{base}/datasets/{dataset['id']}/")
    page.get_by_label("Why is it delisted?").fill("Duplicate of an existing listing.")
    page.get_by_role("button", name="Delist").click()
    expect(page.locator(".messages")).to_contain_text("Delisted")
    expect(page.locator("[data-delisted]")).to_contain_text("Duplicate of an existing listing.")
    shot(page, "delisted")
    page.goto(f"{base}/datasets/?q=Duplicate+exome")
    expect(page.locator("#results .dataset-card")).to_have_count(0)
    listing = researcher.json("GET", "/api/v1/datasets?q=Duplicate")
    assert dataset["id"] not in {d["id"] for d in listing["results"]}
    closed = researcher.json("GET", f"/api/v1/access-requests/{waiting['id']}")
    assert closed["state"] == "withdrawn", closed["state"]
    assert (
        live.sql_value(
            "SELECT count(*) FROM marketplace_auditentry WHERE action = 'dataset.delist'"
        )
        == 1
    )

    # The authenticator is lost: a recovery code gets the admin in, once.
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin-change-me")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Lost your authenticator? Use a recovery code").click()
    page.get_by_label("Recovery code").fill(codes[0])
    page.get_by_role("button", name="Use the recovery code").click()
    expect(page.locator("h1")).to_have_text("Review queue")
    expect(page.locator(".messages")).to_contain_text("Recovery code accepted")


def sign_in_with_second_factor(page: Page, base: str, username: str, password: str) -> None:
    """Log in as staff (or a committee member) and set up the authenticator on the way."""
    page.goto(f"{base}/accounts/login/?next=/review/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    # "Set up your second factor", or "Second factor" once it is set up
    expect(page.locator("h1")).to_contain_text(re.compile("second factor", re.IGNORECASE))
    answer_second_factor(page, username)


# Authenticator keys set up during the journeys, by username: the journeys share one live
# system, so an account set up by one journey answers a later one from the same key.
TOTP_SECRETS: dict[str, str] = {}
_USED_STEP: dict[str, int] = {}


def answer_second_factor(page: Page, username: str) -> None:
    """Set up the authenticator if the page offers it (keeping its key), then answer with
    a code of a time step the account has not used (django-otp refuses a reused code)."""
    setup = page.locator("[data-totp-secret]")
    if setup.count():
        TOTP_SECRETS[username] = setup.inner_text().strip()
    while int(time.time()) // 30 == _USED_STEP.get(username):
        time.sleep(1)
    _USED_STEP[username] = int(time.time()) // 30
    code = TOTP(base64.b32decode(TOTP_SECRETS[username])).token()
    page.get_by_label("Code from your authenticator app").fill(f"{code:06d}")
    page.get_by_role("button", name="Continue").click()


def test_a_two_member_committee_with_a_chair_returns_and_decides(
    live: LiveStack, watched: tuple[Page, Watch], tmp_path: Path
) -> None:
    admin_page, watch = watched
    base = live.base
    # Any account may sit on a committee (API.md): here two of a biobank's staff, who
    # registered as donors; seated, they review and sign in with a second factor.
    for name in ("e2e-dac-chair", "e2e-dac-member"):
        ApiUser.register(base, name, "donor")

    # The admin makes the committee and seats its chair and member, on its web pages.
    sign_in_with_second_factor(
        admin_page,
        base,
        os.environ.get("ADMIN_USER", "admin"),
        os.environ.get("ADMIN_PASSWORD", "admin-change-me"),
    )
    admin_page.goto(f"{base}/committees/")
    admin_page.get_by_label("Name").fill("E2E cardiology DAC")
    admin_page.get_by_label("Member votes needed before the decision").fill("1")
    admin_page.get_by_label("The chair makes the final decision").check()
    admin_page.get_by_role("button", name="Make the committee").click()
    expect(admin_page.locator("[data-policy]")).to_contain_text("1 member vote first")
    for username, role in (("e2e-dac-chair", "chair"), ("e2e-dac-member", "member")):
        admin_page.get_by_label("Username").fill(username)
        admin_page.get_by_label("Role").select_option(role)
        admin_page.get_by_role("button", name="Add", exact=True).click()
        expect(admin_page.locator(".messages")).to_contain_text(f"{username} is {role}")
    expect(admin_page.locator("[data-members]")).to_contain_text("Chair")
    shot(admin_page, "committee")

    dacs = requests_json(f"{base}/api/v1/dacs")
    dac = next(d for d in dacs if d["name"] == "E2E cardiology DAC")
    assert {m["role"] for m in dac["members"]} == {"chair", "member"}
    donor = ApiUser.register(base, "e2e-dac-donor", "donor")
    vcf = samples.write_variants(tmp_path / "dac.vcf", "w", records=200).read_bytes()
    file_id = donor.upload_ready(vcf, "dac.vcf")
    donor.link_wallet(Account.create())  # a payout address needs no funds
    dataset = donor.json(
        "POST",
        "/api/v1/datasets",
        expect=201,
        json={
            "title": "E2E committee cohort",
            "files": [file_id],
            "duo_codes": ["DUO:0000042"],
            "price": str(3 * 10**18),
            "access_days": 30,
            "review": "committee",
            "dac": dac["id"],
        },
    )
    researcher = ApiUser.register(base, "e2e-dac-researcher", "researcher")
    created = researcher.request_access(dataset["id"], statement="Cardiac variants.")
    request_path = f"/requests/{created['id']}/"

    browser = admin_page.context.browser
    assert browser is not None

    def person() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        watch.attach(page)
        return page

    # The member's queue holds the pending vote; they vote.
    member = person()
    sign_in_with_second_factor(member, base, "e2e-dac-member", PASSWORD)
    expect(member.locator("[data-pending-votes]")).to_contain_text("E2E committee cohort")
    shot(member, "dac-pending-votes")
    member.locator("[data-pending-votes] a").first.click()
    member.locator("input[name=vote][value=approve]").check()
    member.get_by_label("Comment").fill("Purpose fits; ask for the control cohort.")
    member.get_by_role("button", name="Record my vote").click()
    expect(member.locator("[data-my-vote]")).to_contain_text("You voted to approve")
    expect(member.get_by_role("button", name="Approve")).to_have_count(0)  # the chair decides

    # The chair sees the vote and the consent fit, and returns the request.
    chair = person()
    sign_in_with_second_factor(chair, base, "e2e-dac-chair", PASSWORD)
    chair.goto(f"{base}{request_path}")
    expect(chair.locator("[data-votes]")).to_contain_text("Purpose fits; ask for the control")
    expect(chair.locator(".fit.yes")).to_be_visible()
    expect(chair.locator("[data-agreement]")).to_be_visible()
    shot(chair, "dac-decision")
    chair.get_by_label("Reason").fill("Name the control cohort you will compare with.")
    chair.get_by_role("button", name="Return for changes").click()
    expect(chair.locator("#request-status")).to_contain_text("Returned for changes")

    # The researcher changes the request on the returned-request page and sends it again.
    researcher_page = person()
    researcher_page.goto(f"{base}/accounts/login/?next={request_path}")
    researcher_page.get_by_label("Username").fill("e2e-dac-researcher")
    researcher_page.get_by_label("Password").fill(PASSWORD)
    researcher_page.get_by_role("button", name="Log in").click()
    expect(researcher_page.locator("[data-returned]")).to_contain_text("Name the control cohort")
    researcher_page.get_by_role("link", name="Change the request and send it again").click()
    researcher_page.get_by_label("Research statement").fill(
        "Cardiac variants, against the UK Biobank controls."
    )
    shot(researcher_page, "dac-returned-edit")
    researcher_page.get_by_role("button", name="Send it again").click()
    expect(researcher_page.locator("#request-status")).to_contain_text("Submitted")
    expect(researcher_page.locator(".timeline")).to_contain_text("Sent again after changes")

    # A new round: the member votes again, then the chair approves.
    member.goto(f"{base}{request_path}")
    member.locator("input[name=vote][value=approve]").check()
    member.get_by_role("button", name="Record my vote").click()
    expect(member.locator("[data-my-vote]")).to_be_visible()
    chair.goto(f"{base}{request_path}")
    expect(chair.locator("[data-tally]")).to_contain_text("1 of 1 votes cast")
    chair.get_by_label("Reason").fill("Fits, with the controls named.")
    chair.get_by_role("button", name="Approve").click()
    expect(chair.locator("#request-status")).to_contain_text("Approved")
    decided = live.sql_value(
        "SELECT data->>'decided_as' FROM marketplace_auditentry "
        "WHERE action = 'request.approve' AND object_id = %s",
        (created["id"],),
    )
    assert decided == "chair"
    assert not watch.problems


def requests_json(url: str) -> Any:
    import requests

    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()
