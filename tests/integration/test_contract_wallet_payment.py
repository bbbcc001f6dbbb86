"""Paying from a smart-contract wallet (a Safe 1.4.1 on anvil): EIP-2612 permits need an
account's own key, so the page offers no one-signature payment and says what to do instead
(approve, then pay, as the wallet's own transactions), the permit call is refused with that
advice, and the two calls the page shows, run as Safe transactions, do pay the voucher."""

from __future__ import annotations

import secrets

import pytest
from django.test import Client
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient
from web3 import Web3

from ledger.localchain import anvil_accounts
from ledger.models import WalletLink
from marketplace.models import AccessRequest, Dataset, Role, User
from marketplace.services.settlement import voucher_for
from tests.ledger.contracts_env import GENE, MarketEnv
from tests.ledger.safe import SafeSingletons, SafeWallet, deploy_safe, deploy_singletons

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
PRICE = 50 * GENE


@pytest.fixture(scope="module")
def singletons(session_w3: Web3) -> SafeSingletons:
    return deploy_singletons(session_w3, anvil_accounts()[0])


@pytest.fixture
def safe(chain_db: MarketEnv, singletons: SafeSingletons) -> SafeWallet:
    """A lab's 2-of-3 Safe holding tokens."""
    owners = [Account.create() for _ in range(3)]
    wallet = deploy_safe(chain_db.w3, chain_db.owner, singletons, owners, threshold=2)
    chain_db.send(chain_db.owner, chain_db.token.functions.mint(wallet.address, 1000 * GENE))
    return wallet


def payable_request(env: MarketEnv, researcher: User, buyer: str, make_user) -> AccessRequest:
    """A request whose voucher the operator signed for `buyer` (what request_sign_voucher
    leaves behind)."""
    donor = make_user(Role.DONOR)
    WalletLink.objects.create(user=researcher, address=buyer)
    dataset = Dataset.objects.create(
        donor=donor, title="Lab cohort", price=PRICE, access_days=30, duo_codes=[]
    )
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        statement="Cardiometabolic risk.",
        amount=PRICE,
        state=AccessRequest.State.PAYABLE,
        chain_request_id="0x" + secrets.token_hex(32),
        buyer=buyer,
        payee=env.payee.address,
        voucher_valid_until=env.now() + 3600,
        voucher_refund_after=env.now() + 7 * 86400,
        voucher_chain_id=int(env.w3.eth.chain_id),
        voucher_market=env.market.address,
    )
    request.voucher_signature = env.sign(voucher_for(request))
    request.save(update_fields=["voucher_signature"])
    return request


def researcher_client(make_user) -> tuple[Client, User]:
    researcher = make_user(Role.RESEARCHER)
    client = Client()
    client.force_login(researcher)
    return client, researcher


def test_the_page_tells_a_contract_wallet_to_batch_approve_and_pay(
    chain_db: MarketEnv, safe: SafeWallet, make_user
) -> None:
    client, researcher = researcher_client(make_user)
    request = payable_request(chain_db, researcher, safe.address, make_user)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "Your linked wallet is a smart-contract wallet" in page
    assert "Transaction Builder" in page
    voucher = client.get(f"/api/v1/access-requests/{request.pk}").json()["voucher"]
    assert voucher["approve_call"]["data"] in page and voucher["call"]["data"] in page
    assert "Pay with one signature" not in page and "data-pay=" not in page


def test_an_account_with_a_key_keeps_the_one_signature_payment(
    chain_db: MarketEnv, make_user
) -> None:
    client, researcher = researcher_client(make_user)
    request = payable_request(chain_db, researcher, chain_db.buyer.address, make_user)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "Pay with one signature" in page
    assert "Your linked wallet is a smart-contract wallet" not in page


def test_the_permit_call_refuses_a_contract_wallet_with_what_to_do(
    chain_db: MarketEnv, safe: SafeWallet, make_user
) -> None:
    researcher = make_user(Role.RESEARCHER)
    request = payable_request(chain_db, researcher, safe.address, make_user)
    api = APIClient()
    api.force_authenticate(researcher)
    response = api.post(
        f"/api/v1/access-requests/{request.pk}/permit-call",
        {"signature": "0x" + "11" * 65},
        format="json",
    )
    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert "smart-contract wallet" in message and "approve_call" in message


def test_a_safe_pays_with_one_batch_of_the_two_calls_the_page_shows(
    chain_db: MarketEnv, safe: SafeWallet, make_user
) -> None:
    env = chain_db
    researcher = make_user(Role.RESEARCHER)
    request = payable_request(env, researcher, safe.address, make_user)
    api = APIClient()
    api.force_authenticate(researcher)
    voucher = api.get(f"/api/v1/access-requests/{request.pk}").json()["voucher"]
    before = env.balance(safe.address), env.balance(env.market.address)
    sender: LocalAccount = anvil_accounts()[7]  # any account may submit a signed Safe tx
    calls = [(call["to"], call["data"]) for call in (voucher["approve_call"], voucher["call"])]
    safe.execute_batch(sender, calls)  # the Transaction Builder's batch: one Safe transaction
    assert env.balance(safe.address) == before[0] - PRICE
    assert env.balance(env.market.address) == before[1] + PRICE
    paid = env.market.events.Paid().get_logs(from_block=0)
    assert [(log["args"]["buyer"], log["args"]["amount"]) for log in paid][-1] == (
        safe.address,
        PRICE,
    )
