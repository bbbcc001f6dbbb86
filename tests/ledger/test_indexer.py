"""The event indexer against a real anvil: confirmations, exactly-once application,
checkpoint restarts and reorgs deeper than the confirmations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.models import ChainEvent, IndexerCheckpoint
from ledger.services.indexer import indexer_run
from ledger.signals import chain_event_applied, chain_event_reverted
from tests.ledger.contracts_env import MarketEnv

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def heard() -> Iterator[dict[str, list[str]]]:
    log: dict[str, list[str]] = {"applied": [], "reverted": []}

    def applied(sender: object, event: ChainEvent, **_: object) -> None:
        log["applied"].append(event.request_id)

    def reverted(sender: object, event: ChainEvent, **_: object) -> None:
        log["reverted"].append(event.request_id)

    chain_event_applied.connect(applied)
    chain_event_reverted.connect(reverted)
    yield log
    chain_event_applied.disconnect(applied)
    chain_event_reverted.disconnect(reverted)


def mine(env: MarketEnv, blocks: int) -> None:
    for _ in range(blocks):
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def paid(env: MarketEnv) -> str:
    voucher = env.voucher()
    env.approve(env.buyer, voucher.amount)
    env.pay(voucher)
    return voucher.requestId


def test_events_wait_for_their_confirmations(chain_db: MarketEnv, heard) -> None:
    request = paid(chain_db)  # mined in the head block
    run = indexer_run()
    assert run.applied == 0 and heard["applied"] == []
    mine(chain_db, 1)
    assert indexer_run().applied == 0  # one confirmation of two
    mine(chain_db, 1)
    assert indexer_run().applied == 1
    assert heard["applied"] == [request]
    event = ChainEvent.objects.get()
    assert event.name == "Paid" and event.args["amount"] == str(100 * 10**18)


def test_each_event_is_applied_once_however_often_the_indexer_runs(
    chain_db: MarketEnv, heard
) -> None:
    requests = [paid(chain_db) for _ in range(3)]
    mine(chain_db, 3)
    for _ in range(3):
        indexer_run()
    assert sorted(heard["applied"]) == sorted(requests)
    assert ChainEvent.objects.count() == 3


def test_a_restart_resumes_from_the_checkpoint(chain_db: MarketEnv, heard, settings) -> None:
    settings.INDEXER_MAX_BLOCK_RANGE = 2
    first = [paid(chain_db) for _ in range(2)]
    mine(chain_db, 2)
    indexer_run(max_ranges=1)  # stops early, as a killed run would
    checkpoint = IndexerCheckpoint.objects.get().block_number
    second = [paid(chain_db) for _ in range(2)]
    mine(chain_db, 2)
    indexer_run()
    assert IndexerCheckpoint.objects.get().block_number > checkpoint
    assert sorted(heard["applied"]) == sorted(first + second)
    assert ChainEvent.objects.count() == 4


def test_a_deep_reorg_reverts_orphaned_events_and_applies_the_replacement_once(
    chain_db: MarketEnv, heard
) -> None:
    w3 = chain_db.w3
    fork_point = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    orphan = paid(chain_db)
    mine(chain_db, 3)
    indexer_run()
    assert heard["applied"] == [orphan]
    # The chain is rewritten below the confirmed head: another payment, more blocks.
    w3.provider.make_request("evm_revert", [fork_point])  # type: ignore[arg-type]
    replacement = paid(chain_db)
    mine(chain_db, 5)
    run = indexer_run()
    assert run.reverted == 1
    assert heard["reverted"] == [orphan]
    assert heard["applied"] == [orphan, replacement]
    assert list(ChainEvent.objects.values_list("request_id", flat=True)) == [replacement]
    indexer_run()
    assert heard["applied"].count(replacement) == 1


def test_release_refund_and_anchor_events_are_decoded(operator_key: MarketEnv, heard) -> None:
    from web3 import Web3

    from ledger.vouchers import request_id_bytes

    env = operator_key
    released, refunded = paid(env), paid(env)
    env.send(env.operator, env.market.functions.release(request_id_bytes(released)))
    env.send(env.operator, env.market.functions.refund(request_id_bytes(refunded)))
    env.send(env.operator, env.market.functions.anchor(Web3.keccak(text="r"), 2))
    mine(env, 2)
    indexer_run()
    names = list(ChainEvent.objects.values_list("name", flat=True))
    assert names == ["Paid", "Paid", "Released", "Refunded", "Anchored"]
    anchored = ChainEvent.objects.get(name="Anchored")
    assert anchored.args["kind"] == "2" and anchored.request_id == ""


def test_a_chain_shorter_than_the_checkpoint_rewinds_instead_of_failing(
    chain_db: MarketEnv, heard
) -> None:
    """A node restarted from an older saved state has lost the blocks above its head,
    the checkpoint's block among them: the stored blocks beyond the head are not
    canonical, and the indexer rewinds below them."""
    w3 = chain_db.w3
    saved = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    lost = paid(chain_db)
    mine(chain_db, 3)
    indexer_run()
    assert heard["applied"] == [lost]
    w3.provider.make_request("evm_revert", [saved])  # type: ignore[arg-type]
    assert IndexerCheckpoint.objects.get().block_number > int(w3.eth.block_number)
    run = indexer_run()
    assert run.reverted == 1 and heard["reverted"] == [lost]
    assert ChainEvent.objects.count() == 0
    assert IndexerCheckpoint.objects.get().block_number <= int(w3.eth.block_number)
