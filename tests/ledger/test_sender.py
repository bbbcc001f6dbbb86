"""The operator's transaction sender against anvil: idempotent per action and key,
contiguous nonces across processes, dropped transactions re-sent, stuck ones replaced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from eth_typing import HexStr
from web3 import Web3

from ledger.models import OperatorTransaction
from ledger.services.sender import operator_transaction_send, operator_transactions_poll
from tests.ledger.contracts_env import MarketEnv

pytestmark = pytest.mark.integration
PROJECT = Path(__file__).resolve().parent.parent.parent
Status = OperatorTransaction.Status


def anchor(key: str) -> OperatorTransaction:
    return operator_transaction_send(
        action="anchor", key=key, function="anchor", args=[Web3.keccak(text=key), 1]
    )


def automine(env: MarketEnv, on: bool) -> None:
    env.w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]


@pytest.mark.django_db
def test_asking_twice_sends_once(operator_key: MarketEnv) -> None:
    first, second = anchor("root-1"), anchor("root-1")
    assert first.pk == second.pk
    assert OperatorTransaction.objects.count() == 1
    assert operator_transactions_poll() == 1
    first.refresh_from_db()
    assert first.status == Status.MINED and first.receipt_status == 1


@pytest.mark.django_db
def test_the_signed_transaction_is_stored_before_broadcast(operator_key: MarketEnv) -> None:
    sent = anchor("root-2")
    assert sent.raw_tx.startswith("0x") and sent.tx_hash in sent.tx_hashes
    assert operator_key.w3.eth.get_transaction(HexStr(sent.tx_hash))["nonce"] == sent.nonce


@pytest.mark.django_db
def test_a_dropped_transaction_is_sent_again(operator_key: MarketEnv, settings) -> None:
    env = operator_key
    settings.SENDER_STUCK_AFTER_S = 0
    automine(env, False)
    try:
        sent = anchor("root-3")
        env.w3.provider.make_request("anvil_dropTransaction", [sent.tx_hash])  # type: ignore[arg-type]
        operator_transactions_poll()  # not mined, not known: the same bytes go out again
        env.w3.eth.get_transaction(HexStr(sent.tx_hash))
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        automine(env, True)
    operator_transactions_poll()
    sent.refresh_from_db()
    assert sent.status == Status.MINED and sent.tx_hashes == [sent.tx_hash]


@pytest.mark.django_db
def test_a_stuck_transaction_is_replaced_with_higher_fees(
    operator_key: MarketEnv, settings
) -> None:
    env = operator_key
    settings.SENDER_STUCK_AFTER_S = 0
    automine(env, False)
    try:
        sent = anchor("root-4")
        tip = sent.max_priority_fee_per_gas
        operator_transactions_poll()  # still pending and known: bump the fees
        sent.refresh_from_db()
        assert len(sent.tx_hashes) == 2 and sent.max_priority_fee_per_gas > tip
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        automine(env, True)
    operator_transactions_poll()
    sent.refresh_from_db()
    assert sent.status == Status.MINED
    assert env.w3.eth.get_transaction_receipt(sent.tx_hashes[-1])["status"] == 1


SEND_MANY = """
import os, sys, django
django.setup()
from core.worker_secrets import mark_worker_process
from web3 import Web3
from ledger.services.sender import operator_transaction_send
mark_worker_process()
for i in range(int(sys.argv[2])):
    key = f"{sys.argv[1]}-{i}"
    operator_transaction_send(action="anchor", key=key, function="anchor",
                              args=[Web3.keccak(text=key), 2])
"""


@pytest.mark.django_db(transaction=True)
def test_two_worker_processes_never_leave_a_nonce_gap(operator_key: MarketEnv, settings) -> None:
    env = operator_key
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL (make test provides it)")
    process_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": url,
        "CHAIN_RPC_URL": settings.CHAIN_RPC_URL,
        "CHAIN_ID": str(settings.CHAIN_ID),
        "OPERATOR_PRIVATE_KEY": env.operator.key.hex(),
    }
    start = env.w3.eth.get_transaction_count(env.operator.address, "pending")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", SEND_MANY, name, "10"], cwd=PROJECT, env=process_env
        )
        for name in ("w1", "w2")
    ]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    nonces = sorted(OperatorTransaction.objects.values_list("nonce", flat=True))
    assert nonces == list(range(start, start + 20))
    operator_transactions_poll()
    assert OperatorTransaction.objects.filter(status=Status.MINED).count() == 20


@pytest.mark.django_db
def test_the_web_process_cannot_load_the_operator_key(chain_db: MarketEnv, monkeypatch) -> None:
    from core.worker_secrets import NotInWorker
    from ledger.operator import operator_account

    monkeypatch.setenv("OPERATOR_PRIVATE_KEY", chain_db.operator.key.hex())
    with pytest.raises(NotInWorker):
        operator_account()
    with pytest.raises(NotInWorker):
        anchor("from-the-web")


@pytest.mark.django_db
def test_a_transaction_whose_block_is_lost_is_sent_again(operator_key: MarketEnv) -> None:
    """A node restarted from an older state (here: evm_revert) loses a mined transaction:
    the sender notices its receipt is gone and sends the same bytes again, so the next
    nonce is not stuck behind a gap."""
    w3 = operator_key.w3
    saved = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    lost = anchor("root-lost")
    assert operator_transactions_poll() == 1
    lost.refresh_from_db()
    assert lost.status == Status.MINED
    w3.provider.make_request("evm_revert", [saved])  # type: ignore[arg-type]
    following = anchor("root-after")  # its nonce comes after the lost one's
    assert following.nonce == lost.nonce + 1
    assert operator_transactions_poll() == 2
    for tx in (lost, following):
        tx.refresh_from_db()
        assert tx.status == Status.MINED and tx.receipt_status == 1
        assert w3.eth.get_transaction_receipt(HexStr(tx.tx_hash))["status"] == 1


@pytest.mark.django_db
def test_a_forged_row_is_never_signed(operator_key: MarketEnv, settings) -> None:
    """Finding 3: whoever can write the table used to get operator-signed transactions
    with any calldata, to any contract, on any chain, through the fee bump."""
    env = operator_key
    settings.SENDER_STUCK_AFTER_S = 0
    automine(env, False)
    try:
        sent = anchor("root-forged")
        token_transfer = env.token.encode_abi("transfer", args=[env.other.address, 10**18])
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_operatortransaction SET function = 'transfer', "
                'args = %s, "to" = %s, data = %s WHERE id = %s',
                ['["0x00"]', env.token.address, token_transfer, sent.pk],
            )
        operator_transactions_poll()  # stuck: would be bumped (re-signed)
        forged = OperatorTransaction.objects.get(pk=sent.pk)
        assert forged.status == Status.FAILED and "not one the worker wrote" in forged.error
        assert forged.tx_hashes == [sent.tx_hash]  # nothing new was signed
    finally:
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        automine(env, True)


@pytest.mark.django_db
def test_a_row_for_another_chain_is_never_signed(operator_key: MarketEnv, settings) -> None:
    env = operator_key
    settings.SENDER_STUCK_AFTER_S = 0
    automine(env, False)
    try:
        sent = anchor("root-chain-1")
        OperatorTransaction.objects.filter(pk=sent.pk).update(chain_id=1)
        operator_transactions_poll()
        assert OperatorTransaction.objects.get(pk=sent.pk).status == Status.FAILED
    finally:
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        automine(env, True)


@pytest.mark.django_db
def test_only_the_lowest_stuck_nonce_is_bumped_and_never_past_the_cap(
    operator_key: MarketEnv, settings
) -> None:
    """Finding 5: every later nonce was bumped 15 % per poll without limit while it waited
    behind a stuck one (a 268x tip in 40 polls)."""
    env = operator_key
    settings.SENDER_STUCK_AFTER_S = 0
    automine(env, False)
    try:
        low, high = anchor("root-low"), anchor("root-high")
        settings.SENDER_MAX_FEE_GWEI = int(low.max_fee_per_gas) * 2 / 10**9
        for _ in range(12):
            operator_transactions_poll()
        low.refresh_from_db()
        high.refresh_from_db()
        assert len(high.tx_hashes) == 1  # waited behind the lowest nonce
        assert 2 <= len(low.tx_hashes) <= 8
        assert int(low.max_fee_per_gas) <= settings.SENDER_MAX_FEE_GWEI * 10**9
        assert "fee cap" in low.error
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        automine(env, True)
    operator_transactions_poll()
    low.refresh_from_db()
    high.refresh_from_db()
    assert low.status == Status.MINED and high.status == Status.MINED


@pytest.mark.django_db
def test_a_transaction_refused_for_its_price_is_repriced_at_its_nonce(
    operator_key: MarketEnv, settings
) -> None:
    """Finding 5: a transaction the node refused for its price was sent again with the
    same bytes forever, and every later nonce waited behind it."""
    env = operator_key
    original_base = int(env.w3.eth.get_block("latest").get("baseFeePerGas", 0))
    automine(env, False)
    try:
        sent = anchor("root-cheap")
        env.w3.provider.make_request("anvil_dropTransaction", [sent.tx_hash])  # type: ignore[arg-type]
        base = int(sent.max_fee_per_gas) * 4
        env.w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(base)])  # type: ignore[arg-type]
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        env.w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(base)])  # type: ignore[arg-type]
        OperatorTransaction.objects.filter(pk=sent.pk).update(status=Status.SIGNED)
        operator_transactions_poll()  # refused for its price: re-signed with today's fees
        repriced = OperatorTransaction.objects.get(pk=sent.pk)
        assert len(repriced.tx_hashes) == 2, repriced.error
        assert int(repriced.max_fee_per_gas) > int(sent.max_fee_per_gas)
        assert repriced.nonce == sent.nonce
        operator_transactions_poll()  # the new bytes go out
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        automine(env, True)
    operator_transactions_poll()
    assert OperatorTransaction.objects.get(pk=sent.pk).status == Status.MINED
    # The base fee override outlives the snapshot revert: put it back for later tests.
    env.w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(original_base)])  # type: ignore[arg-type]
    env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.mark.django_db
def test_a_rotated_operator_reissues_what_the_old_key_left_in_flight(
    operator_key: MarketEnv, monkeypatch
) -> None:
    """Finding 7: after `setOperator`, transactions the old key signed revert; the worker
    with the new key signs the same intents again at its own nonces."""
    from ledger.operator import _account_from

    env = operator_key
    automine(env, False)
    try:
        sent = anchor("root-rotated")
        env.w3.provider.make_request("anvil_dropTransaction", [sent.tx_hash])  # type: ignore[arg-type]
    finally:
        automine(env, True)
    new = env.accounts[7]
    env.send(env.owner, env.market.functions.setOperator(new.address, True))
    monkeypatch.setenv("OPERATOR_PRIVATE_KEY", new.key.hex())
    _account_from.cache_clear()
    try:
        operator_transactions_poll()  # re-issued by the new key, broadcast, mined
        operator_transactions_poll()
        reissued = OperatorTransaction.objects.get(pk=sent.pk)
        assert reissued.sender == new.address and reissued.status == Status.MINED
        assert env.w3.eth.get_transaction_receipt(HexStr(reissued.tx_hash))["status"] == 1
    finally:
        _account_from.cache_clear()


@pytest.mark.django_db
def test_nonce_too_low_for_an_unknown_hash_reissues_at_the_nodes_nonce(
    operator_key: MarketEnv, settings
) -> None:
    """Finding 5: the operator's nonce went to another transaction (sent outside the
    sender); the stored one can never be mined. It is re-issued at the node's next nonce."""
    env = operator_key
    settings.SENDER_STUCK_AFTER_S = 0
    automine(env, False)
    try:
        sent = anchor("root-nonce")
        env.w3.provider.make_request("anvil_dropTransaction", [sent.tx_hash])  # type: ignore[arg-type]
        other = env.operator.sign_transaction(
            {
                "to": env.other.address,
                "value": 1,
                "nonce": sent.nonce,
                "gas": 21_000,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
                "chainId": env.w3.eth.chain_id,
                "type": 2,
            }
        )
        env.w3.eth.send_raw_transaction(other.raw_transaction)
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        automine(env, True)
    operator_transactions_poll()  # nonce too low, hash unknown: re-issued
    operator_transactions_poll()  # broadcast and mined
    operator_transactions_poll()
    reissued = OperatorTransaction.objects.get(pk=sent.pk)
    assert reissued.nonce > sent.nonce
    assert reissued.status == Status.MINED, reissued.error
