"""The flow from listing to settlement against a real anvil, with the worker's services
run in-process (tasks eager): upload, ingest, list, request, voucher, pay from the
researcher's wallet with only the voucher's `call`, grant, download and decrypt with the
reference crypt4gh, release, settle."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from crypt4gh import lib as reference
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from web3 import Web3

from config.celery import app as celery_app
from genomics import c4gh
from genomics.models import GenomicFile
from genomics.services.ingest import file_ingest
from ledger.models import WalletLink
from ledger.services.indexer import indexer_run
from ledger.services.sender import operator_transactions_poll
from marketplace.models import AccessRequest, Role
from tests.genomics import samples
from tests.genomics.conftest import upload
from tests.ledger.contracts_env import MarketEnv

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def eager() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def mine(env: MarketEnv, blocks: int = 3) -> None:
    for _ in range(blocks):
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_request_to_settlement(
    operator_key: MarketEnv,
    archive_key,
    worker,
    eager,
    make_user,
    tmp_path,
    django_capture_on_commit_callbacks,
) -> None:
    env = operator_key
    donor = make_user(Role.DONOR)
    researcher = make_user(Role.RESEARCHER)
    WalletLink.objects.create(user=donor, address=env.payee.address)
    WalletLink.objects.create(user=researcher, address=env.buyer.address)
    secret, public = c4gh.generate_keypair()
    researcher.crypt4gh_public_key = public
    researcher.save()

    vcf = samples.write_variants(tmp_path / "donor.vcf", "w", records=2000).read_bytes()
    browser = Client()
    browser.force_login(donor)
    upload(browser, vcf, filename="donor.vcf")
    stored = file_ingest(file_id=str(GenomicFile.objects.get().pk))
    assert stored is not None and stored.state == GenomicFile.State.READY

    listing = (
        api(donor)
        .post(
            "/api/v1/datasets",
            {
                "title": "Donor genome",
                "files": [str(stored.pk)],
                "duo_codes": ["DUO:0000006"],
                "price": str(50 * 10**18),
                "access_days": 30,
                "review": "auto",
            },
            format="json",
        )
        .json()
    )
    researcher_api = api(researcher)
    with django_capture_on_commit_callbacks(execute=True):
        created = researcher_api.post(
            "/api/v1/access-requests",
            {
                "dataset": listing["id"],
                "purpose_codes": ["DUO:0000006"],
                "statement": "Cardiometabolic risk.",
                "accept_terms": True,
            },
            format="json",
        ).json()
    request_url = f"/api/v1/access-requests/{created['id']}"
    payable = researcher_api.get(request_url).json()
    assert payable["state"] == "payable", payable
    voucher = payable["voucher"]
    assert (
        voucher["amount"] == str(50 * 10**18) and voucher["typed_data"]["primaryType"] == "Voucher"
    )

    # The researcher's own wallet: approve the amount, then send exactly the voucher's call.
    env.approve(env.buyer, int(voucher["amount"]))
    tx = {
        "from": env.buyer.address,
        "to": voucher["call"]["to"],
        "data": voucher["call"]["data"],
        "nonce": env.w3.eth.get_transaction_count(env.buyer.address),
        "gas": 300_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "chainId": env.w3.eth.chain_id,
    }
    env.w3.eth.wait_for_transaction_receipt(
        env.w3.eth.send_raw_transaction(env.buyer.sign_transaction(tx).raw_transaction)
    )
    payee_before = env.balance(env.payee.address)
    mine(env)
    with django_capture_on_commit_callbacks(execute=True):
        indexer_run()
    granted = researcher_api.get(request_url).json()
    assert granted["state"] == "granted", granted
    download = researcher_api.get(granted["grant"]["files"][0]["download_url"])
    assert download.status_code == 200
    out = io.BytesIO()
    reference.decrypt([(0, secret, None)], io.BytesIO(b"".join(download.streaming_content)), out)  # type: ignore[attr-defined]
    assert out.getvalue() == vcf

    operator_transactions_poll()  # the release transaction is mined
    mine(env)
    indexer_run()
    settled = researcher_api.get(request_url).json()
    assert settled["state"] == "settled"
    fee = 50 * 10**18 * 250 // 10_000
    assert env.balance(env.payee.address) == payee_before + 50 * 10**18 - fee
    actions = [step["action"] for step in settled["timeline"]]
    assert actions == [
        "submit",
        "approve",
        "voucher",
        "paid",
        "deliver",  # the worker asks the chain to record the delivery
        "grant",  # made once the chain shows it delivered
        "download",
        "delivered",  # the confirmed `Delivered` event
        "settled",
    ]


def test_a_payment_of_the_wrong_amount_is_flagged_never_granted(
    operator_key: MarketEnv, worker, eager, make_user, django_capture_on_commit_callbacks
) -> None:
    from ledger.models import ChainEvent
    from marketplace.services.settlement import chain_request_id, request_apply_payment
    from tests.factories import ready_file

    env = operator_key
    donor, researcher = make_user(Role.DONOR), make_user(Role.RESEARCHER)
    admin = make_user(Role.ADMIN, email="admin@example.org")
    WalletLink.objects.create(user=donor, address=env.payee.address)  # listing needs one
    dataset = (
        api(donor)
        .post(
            "/api/v1/datasets",
            {
                "title": "x",
                "files": [str(ready_file(donor).pk)],
                "duo_codes": ["DUO:0000042"],
                "price": "1000",
                "access_days": 30,
                "review": "committee",
            },
            format="json",
        )
        .json()
    )
    created = (
        api(researcher)
        .post(
            "/api/v1/access-requests",
            {
                "dataset": dataset["id"],
                "purpose_codes": ["DUO:0000042"],
                "statement": "s",
                "accept_terms": True,
            },
            format="json",
        )
        .json()
    )
    request = AccessRequest.objects.get(pk=created["id"])
    AccessRequest.objects.filter(pk=request.pk).update(
        state="payable", chain_request_id=chain_request_id(request.pk), buyer=env.buyer.address
    )
    event = ChainEvent.objects.create(
        chain_id=31337,
        tx_hash="0x" + "ab" * 32,
        log_index=0,
        block_number=1,
        block_hash="0x" + "cd" * 32,
        tx_index=0,
        contract=env.market.address,
        name="Paid",
        request_id=chain_request_id(request.pk),
        args={"amount": "999", "buyer": env.buyer.address, "payee": env.payee.address},
    )
    with django_capture_on_commit_callbacks(execute=True):
        request_apply_payment(event=event)
    request.refresh_from_db()
    assert request.state == "payable" and "999" in request.flagged
    from django.core import mail

    from marketplace.models import Notification

    # (Admins sit on the platform's committee, so the request's arrival told them too.)
    told = Notification.objects.get(user=admin, message__contains="needs an admin")
    assert "999" in told.message
    flagged = [m.to for m in mail.outbox if "needs an admin" in m.body]
    assert flagged == [["admin@example.org"]]
    assert Web3.is_address(request.buyer)
