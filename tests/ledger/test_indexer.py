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
    cancelled = Web3.to_hex(Web3.keccak(text="never paid"))
    env.send(env.operator, env.market.functions.deliver(request_id_bytes(released)))
    env.send(env.operator, env.market.functions.release(request_id_bytes(released)))
    env.send(env.operator, env.market.functions.refund(request_id_bytes(refunded)))
    env.send(env.operator, env.market.functions.cancel(request_id_bytes(cancelled)))
    env.send(env.operator, env.market.functions.anchor(Web3.keccak(text="r"), 2))
    env.send(env.owner, env.market.functions.pause())
    env.send(env.owner, env.market.functions.unpause())
    mine(env, 2)
    indexer_run()
    names = list(ChainEvent.objects.values_list("name", flat=True))
    assert names == [
        "Paid",
        "Paid",
        "Delivered",
        "Released",
        "Refunded",
        "Cancelled",
        "Anchored",
        "Paused",
        "Unpaused",
    ]
    anchored = ChainEvent.objects.get(name="Anchored")
    assert anchored.args["kind"] == "2" and anchored.request_id == ""
    assert ChainEvent.objects.get(name="Cancelled").request_id == cancelled
    assert ChainEvent.objects.get(name="Paused").args["account"] == env.owner.address
    paid_event = ChainEvent.objects.filter(name="Paid").first()
    assert paid_event is not None and paid_event.args["terms"] == "0x" + "00" * 32


def test_logs_from_a_lagging_backend_are_never_committed(
    chain_db: MarketEnv, heard, monkeypatch
) -> None:
    """Finding 6: `eth_getLogs` answered by a backend still on an orphaned fork, while the
    checkpoint's block is read from the canonical one. Without a check of each log's
    block hash the orphaned `Paid` is committed under a canonical checkpoint, and no
    later run ever rewinds it."""
    from ledger import chain

    w3 = chain_db.w3
    fork_point = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    orphan = paid(chain_db)
    mine(chain_db, 3)
    stale_logs = w3.eth.get_logs({"address": chain_db.market.address, "fromBlock": 0})
    w3.provider.make_request("evm_revert", [fork_point])  # type: ignore[arg-type]
    mine(chain_db, 4)  # the canonical chain: same heights, other blocks, no payment
    served = chain.web3()
    real_get_logs = served.eth.get_logs
    monkeypatch.setattr(served.eth, "get_logs", lambda *a, **k: stale_logs)
    run = indexer_run()
    assert heard["applied"] == [] and not ChainEvent.objects.exists()
    assert orphan not in heard["applied"]
    assert run.applied == 0
    # The backend catches up: the range is indexed from the same checkpoint.
    monkeypatch.setattr(served.eth, "get_logs", real_get_logs)
    assert indexer_run().checkpoint == int(w3.eth.block_number) - 2


class CappedRpc:
    """A JSON-RPC proxy on loopback in front of anvil that refuses `eth_getLogs` over more
    than `cap` blocks, with the error text a hosted provider answers."""

    def __init__(self, upstream: str, cap: int) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import requests

        self.refused = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                call = json.loads(body)
                if call.get("method") == "eth_getLogs":
                    query = call["params"][0]
                    span = int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1
                    if span > cap:
                        proxy.refused += 1
                        answer = {
                            "jsonrpc": "2.0",
                            "id": call["id"],
                            "error": {
                                "code": -32600,
                                "message": f"eth_getLogs is limited to a {cap} block range",
                            },
                        }
                        raw = json.dumps(answer).encode()
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(raw)))
                        self.end_headers()
                        self.wfile.write(raw)
                        return
                raw = requests.post(
                    upstream,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                ).content
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def test_a_provider_that_caps_log_ranges_makes_the_indexer_split_them(
    chain_db: MarketEnv, heard, settings
) -> None:
    """Finding 6: many hosted RPCs cap eth_getLogs at 1,000 blocks, below our default
    2,000: the indexer halves the range and goes on instead of failing every run."""
    from ledger.services import indexer

    indexer._learned_range.clear()
    w3 = chain_db.w3
    first = paid(chain_db)
    w3.provider.make_request("anvil_mine", [hex(2500)])  # type: ignore[arg-type]
    second = paid(chain_db)
    mine(chain_db, 2)
    proxy = CappedRpc(str(w3.provider.endpoint_uri), cap=1000)  # type: ignore[attr-defined]
    try:
        settings.CHAIN_RPC_URL = proxy.url
        settings.INDEXER_MAX_BLOCK_RANGE = 2000
        run = indexer_run()
    finally:
        proxy.stop()
        indexer._learned_range.clear()
    assert proxy.refused >= 1
    assert heard["applied"] == [first, second]
    assert run.checkpoint == int(w3.eth.block_number) - 2


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
