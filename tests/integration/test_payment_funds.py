"""Before paying, the request page reads the buyer's wallet on chain and says what is
missing, token and gas, and how to get it, instead of a raw JSON-RPC error (issue 16 §5);
the payment, delivery and release transactions stay on the page after the grant."""

from __future__ import annotations

import pytest
from django.test import Client
from eth_account import Account
from web3.types import Wei

from marketplace.models import AccessRequest, Role
from tests.integration.test_contract_wallet_payment import PRICE, payable_request
from tests.ledger.contracts_env import GENE, MarketEnv

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_an_empty_wallet_is_told_what_is_missing_before_paying(
    chain_db: MarketEnv, make_user
) -> None:
    researcher = make_user(Role.RESEARCHER)
    client = Client()
    client.force_login(researcher)
    empty = Account.create().address
    request = payable_request(chain_db, researcher, empty, make_user)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "Your wallet cannot pay yet" in page
    assert f"{PRICE // GENE} GENE missing" in page
    assert 'data-missing="gas"' in page and "ETH missing" in page
    assert '<p class="pay-actions" hidden>' in page  # no button that would fail

    chain_db.send(chain_db.owner, chain_db.token.functions.mint(empty, PRICE - GENE))
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "1 GENE missing" in page

    chain_db.send(chain_db.owner, chain_db.token.functions.mint(empty, GENE))
    chain_db.w3.eth.send_transaction(
        {"from": chain_db.owner.address, "to": empty, "value": Wei(10**18)}
    )
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "Your wallet cannot pay yet" not in page
    assert '<p class="pay-actions">' in page


def test_the_transactions_stay_on_the_page_after_the_grant(chain_db: MarketEnv, make_user) -> None:
    researcher = make_user(Role.RESEARCHER)
    client = Client()
    client.force_login(researcher)
    request = payable_request(chain_db, researcher, chain_db.buyer.address, make_user)
    hashes = {"paid_tx": "0x" + "a1" * 32, "deliver_tx": "0x" + "b2" * 32}
    AccessRequest.objects.filter(pk=request.pk).update(state="granted", **hashes)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert all(tx in page for tx in hashes.values())
    AccessRequest.objects.filter(pk=request.pk).update(state="settled", release_tx="0x" + "c3" * 32)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert all(tx in page for tx in [*hashes.values(), "0x" + "c3" * 32])
