"""Gas used by the market's operations on a fresh anvil, next to a plain ERC-20 transfer
and transferFrom measured in the same run.

    .venv/bin/python bench/gas.py

Targets: payWithPermit <= 150k, pay <= 110k, release <= 70k, anchor <= 35k.

Ocean Protocol's datatoken order is measured too, in the same run: its contracts as
published on npm (`@oceanprotocol/contracts` 2.6.0, pinned in package.json's
devDependencies) deployed on the same anvil, and `ERC20Template.startOrder` called by a
consumer who already holds a datatoken, as an Ocean purchase ends.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account.messages import encode_defunct
from web3 import Web3
from web3.logs import DISCARD

from bench.support.common import PROJECT, table
from ledger.artifacts import load_artifact
from ledger.localchain import anvil_accounts
from ledger.transactions import deploy, send_and_wait
from ledger.vouchers import request_id_bytes
from tests.ledger.contracts_env import GENE, deploy_market
from tests.support.processes import AnvilNode

OCEAN = PROJECT / "node_modules/@oceanprotocol/contracts/artifacts/contracts"
TARGETS = {"payWithPermit": 150_000, "pay": 110_000, "release": 70_000, "anchor": 35_000}


def ocean_artifact(path: str) -> dict[str, Any]:
    data = json.loads((OCEAN / path).read_text())
    return {"abi": data["abi"], "bytecode": data["bytecode"]}


def ocean_order_gas(w3: Web3, token: str) -> tuple[int, int]:
    """Gas of Ocean's `startOrder`: the first order of a datatoken, and a later one."""
    owner, publisher, consumer, provider = (anvil_accounts()[i] for i in (0, 1, 3, 4))
    router_artifact = ocean_artifact("pools/FactoryRouter.sol/FactoryRouter.json")
    factory_artifact = ocean_artifact("ERC721Factory.sol/ERC721Factory.json")
    datatoken_artifact = ocean_artifact("templates/ERC20Template.sol/ERC20Template.json")
    router, _ = deploy(
        w3, owner, router_artifact, owner.address, token, owner.address, owner.address, []
    )
    nft_template, _ = deploy(
        w3, owner, ocean_artifact("templates/ERC721Template.sol/ERC721Template.json")
    )
    datatoken_template, _ = deploy(w3, owner, datatoken_artifact)
    factory, _ = deploy(w3, owner, factory_artifact, nft_template, datatoken_template, router)
    router_contract = w3.eth.contract(
        address=Web3.to_checksum_address(router), abi=router_artifact["abi"]
    )
    send_and_wait(
        w3, owner, {"to": router, "data": router_contract.encode_abi("addFactory", args=[factory])}
    )
    factory_contract = w3.eth.contract(
        address=Web3.to_checksum_address(factory), abi=factory_artifact["abi"]
    )
    receipt = send_and_wait(
        w3,
        publisher,
        {
            "to": factory,
            "data": factory_contract.encode_abi(
                "createNftWithErc20",
                args=[
                    ("Data NFT", "DN", 1, "https://example.org", True, publisher.address),
                    (1, ["Datatoken", "DT"], [publisher.address] * 3 + [token], [10**24, 0], []),
                ],
            ),
        },
    )
    created = factory_contract.events.TokenCreated().process_receipt(receipt, errors=DISCARD)
    datatoken = w3.eth.contract(
        address=created[0]["args"]["newTokenAddress"], abi=datatoken_artifact["abi"]
    )
    send_and_wait(
        w3,
        publisher,
        {
            "to": datatoken.address,
            "data": datatoken.encode_abi("mint", args=[consumer.address, 10 * GENE]),
        },
    )
    valid_until, provider_data = 2**40, b"{}"
    message = Web3.solidity_keccak(
        ["bytes", "address", "address", "uint256", "uint256"],
        [provider_data, provider.address, token, 0, valid_until],
    )
    signed = provider.sign_message(encode_defunct(primitive=message))
    provider_fee = (
        provider.address,
        token,
        0,
        signed.v,
        signed.r.to_bytes(32, "big"),
        signed.s.to_bytes(32, "big"),
        valid_until,
        provider_data,
    )
    orders = [
        send_and_wait(
            w3,
            consumer,
            {
                "to": datatoken.address,
                "data": datatoken.encode_abi(
                    "startOrder",
                    args=[consumer.address, 0, provider_fee, (publisher.address, token, 0)],
                ),
            },
        )["gasUsed"]
        for _ in range(2)
    ]
    return orders[0], orders[1]


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
        gas["deliver"] = env.deliver(voucher)["gasUsed"]
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
        gas["Ocean startOrder, first"], gas["Ocean startOrder"] = ocean_order_gas(
            w3, env.token.address
        )
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
        "deliver",
        "release",
        "refund",
        "anchor",
        "ERC-20 transfer",
        "ERC-20 transferFrom",
        "Ocean startOrder",
        "Ocean startOrder, first",
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
        ["(Ocean: @oceanprotocol/contracts 2.6.0 from npm, same anvil, same run)", "", "", ""]
    )
    table(
        "Gas used (anvil, optimizer 200 runs, evm cancun, market already holding escrows); "
        "ratio against an ERC-20 transferFrom in the same run",
        ["operation", "gas", "x transferFrom", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
