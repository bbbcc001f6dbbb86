"""Audit entries and dataset records anchored on chain, and verify_audit checking them."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ledger.services.indexer import indexer_run
from ledger.services.sender import operator_transactions_poll
from marketplace.models import Anchor, AuditEntry, Dataset, Role
from marketplace.services.anchoring import anchors_create, merkle_root
from marketplace.services.audit import audit_append
from tests.factories import payout_wallet, ready_file
from tests.ledger.contracts_env import MarketEnv

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_merkle_root_pairs_and_carries_the_odd_leaf() -> None:
    import hashlib

    a, b, c = ("0x" + bytes([i]).hex() * 32 for i in (1, 2, 3))
    ab = hashlib.sha256(bytes.fromhex(a[2:]) + bytes.fromhex(b[2:])).digest()
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == "0x" + ab.hex()
    assert merkle_root([a, b, c]) == "0x" + hashlib.sha256(ab + bytes.fromhex(c[2:])).hexdigest()


def anchor_and_confirm(env: MarketEnv) -> list[Anchor]:
    made = anchors_create()
    operator_transactions_poll()
    for _ in range(3):
        env.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    indexer_run()
    return made


def test_roots_are_anchored_and_verified_against_the_chain(
    operator_key: MarketEnv, client_for
) -> None:
    client, donor = client_for(Role.DONOR)
    payout_wallet(donor)  # listing needs one
    client.post(
        "/api/v1/datasets",
        {
            "title": "x",
            "files": [str(ready_file(donor).pk)],
            "duo_codes": ["DUO:0000042"],
            "price": "1",
            "access_days": 1,
            "review": "auto",
        },
        format="json",
    )
    for i in range(4):
        audit_append(action="test.event", data={"i": i})
    made = anchor_and_confirm(operator_key)
    assert {a.kind for a in made} == {Anchor.Kind.AUDIT, Anchor.Kind.DATASETS}
    assert all(a.tx_hash for a in Anchor.objects.all())
    dataset = Dataset.objects.get()
    assert (
        dataset.anchor_tx
        and client.get(f"/api/v1/datasets/{dataset.pk}").json()["provenance"]["anchor_tx"]
        == dataset.anchor_tx
    )
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "2 anchored roots match the chain" in out.getvalue()
    assert anchors_create() == []  # nothing new to anchor


def test_verify_audit_notices_an_anchor_that_no_longer_matches(operator_key: MarketEnv) -> None:
    for i in range(3):
        audit_append(action="test.event", data={"i": i})
    anchor_and_confirm(operator_key)
    # Someone with the database's keys rewrites an anchored batch and re-chains it.
    anchor = Anchor.objects.get(kind=Anchor.Kind.AUDIT)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE marketplace_anchor SET root = %s WHERE id = %s", ["0x" + "11" * 32, anchor.pk]
        )
    with pytest.raises(CommandError, match="no longer match"):
        call_command("verify_audit", stdout=io.StringIO())


def test_a_root_whose_send_met_a_dead_node_is_sent_by_the_next_run(
    operator_key: MarketEnv, settings
) -> None:
    from ledger import chain

    audit_append(action="test.event", data={"i": 1})
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"  # nothing listens: the node is down
    with pytest.raises(chain.UNREACHABLE):
        anchors_create()
    waiting = Anchor.objects.get()
    assert waiting.tx_hash == ""
    settings.CHAIN_RPC_URL = operator_key.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    assert anchor_and_confirm(operator_key) == []  # nothing new, but the waiting root is sent
    waiting.refresh_from_db()
    assert waiting.tx_hash


def test_a_forged_anchor_row_is_never_signed(operator_key: MarketEnv) -> None:
    """Settlement review, finding 3: the web tier can write `marketplace_anchor`; a row
    with a root of its choosing must not become an operator-signed transaction."""
    from ledger.models import OperatorTransaction

    for i in range(2):
        audit_append(action="test.event", data={"i": i})
    entries = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    Anchor.objects.create(
        kind=Anchor.Kind.AUDIT,
        root="0x" + "66" * 32,  # not the root of those entries
        first_seq=entries[0],
        last_seq=entries[-1],
    )
    Anchor.objects.create(
        kind=Anchor.Kind.DATASETS, root="0x" + "77" * 32, datasets=[], records=["77" * 32]
    )
    anchors_create()
    assert not OperatorTransaction.objects.filter(key__in=["0x" + "66" * 32, "0x" + "77" * 32])
    assert not Anchor.objects.filter(root__in=["0x" + "66" * 32, "0x" + "77" * 32]).exists()
    # The next run anchors the entries the forged row claimed, with the worker's own root.
    anchors_create()
    root = merkle_root(list(AuditEntry.objects.order_by("seq").values_list("hash", flat=True)))
    assert OperatorTransaction.objects.filter(action="anchor", key=root).exists()
