"""Gas used by the market's operations on a fresh anvil, next to a plain ERC-20 transfer
and transferFrom measured in the same run.

    .venv/bin/python bench/gas.py

Targets: payWithPermit <= 150k, pay <= 110k, release <= 70k, anchor <= 35k.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web3 import Web3

from bench.support.common import table
from ledger.artifacts import load_artifact
from ledger.localchain import anvil_accounts
from ledger.vouchers import request_id_bytes
from tests.ledger.contracts_env import GENE, deploy_market
from tests.support.processes import AnvilNode

TARGETS = {"payWithPermit": 150_000, "pay": 110_000, "release": 70_000, "anchor": 35_000}


def main() -> None:
    node = AnvilNode(Path(tempfile.mkdtemp(prefix="gas-")))
    node.start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        accounts = anvil_accounts()
        env = deploy_market(w3, accounts, dict(load_artifact("GeneToken")), (accounts[0].address,))
        gas: dict[str, int] = {}
        # Warm the payee's and treasury's balances, as on a live market.
        env.send(env.owner, env.token.functions.mint(env.payee.address, GENE))
        env.send(env.owner, env.token.functions.mint(env.treasury.address, GENE))

        receipt = env.send(env.buyer, env.token.functions.transfer(env.other.address, GENE))
        gas["ERC-20 transfer"] = receipt["gasUsed"]
        env.send(env.buyer, env.token.functions.approve(env.accounts[6].address, GENE))
        receipt = env.send(
            env.accounts[6],
            env.token.functions.transferFrom(env.buyer.address, env.other.address, GENE),
        )
        gas["ERC-20 transferFrom"] = receipt["gasUsed"]

        # Steady state: the market already holds escrows, as it does in operation (the very
        # first payment into an empty market also turns its token balance from zero).
        opening = env.voucher()
        env.approve(env.buyer, opening.amount)
        env.pay(opening)

        voucher = env.voucher()
        approve = env.send(
            env.buyer, env.token.functions.approve(env.market.address, voucher.amount)
        )
        pay = env.pay(voucher)
        gas["approve"] = approve["gasUsed"]
        gas["pay"] = pay["gasUsed"]
        gas["approve + pay"] = approve["gasUsed"] + pay["gasUsed"]
        gas["release"] = env.send(
            env.operator, env.market.functions.release(request_id_bytes(voucher.requestId))
        )["gasUsed"]

        refunded = env.voucher()
        env.approve(env.buyer, refunded.amount)
        env.pay(refunded)
        gas["refund"] = env.send(
            env.operator, env.market.functions.refund(request_id_bytes(refunded.requestId))
        )["gasUsed"]

        permitted = env.voucher()
        deadline = env.now() + 600
        v, r, s = env.permit(env.buyer, permitted.amount, deadline)
        gas["payWithPermit"] = env.send(
            env.buyer,
            env.market.functions.payWithPermit(
                permitted.as_tuple(),
                env.sign(permitted),
                deadline,
                v,
                r,
                s,
            ),
        )["gasUsed"]
        gas["anchor"] = env.send(
            env.operator, env.market.functions.anchor(Web3.keccak(text="root"), 2)
        )["gasUsed"]
    finally:
        node.stop()
    anchor = gas["ERC-20 transferFrom"]
    rows = []
    for name in (
        "approve + pay",
        "pay",
        "payWithPermit",
        "release",
        "refund",
        "anchor",
        "ERC-20 transfer",
        "ERC-20 transferFrom",
    ):
        target = TARGETS.get(name)
        verdict = "" if target is None else ("ok" if gas[name] <= target else "OVER")
        rows.append(
            [
                name,
                f"{gas[name]:,}",
                f"{gas[name] / anchor:.2f}",
                f"{target:,} {verdict}" if target else "",
            ]
        )
    rows.append(
        [
            "Ocean datatoken order",
            "not measured here",
            "",
            "no published figure found in our stored sources (see README)",
        ]
    )
    table(
        "Gas used (anvil, optimizer 200 runs, evm cancun, market already holding escrows); "
        "ratio against an ERC-20 transferFrom in the same run",
        ["operation", "gas", "x transferFrom", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
