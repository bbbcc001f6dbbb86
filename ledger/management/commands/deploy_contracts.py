"""Deploy GeneToken and AccessMarket to CHAIN_RPC_URL and record them.

On a local anvil chain (id 31337) everything has a default: anvil's account 0 deploys and
owns, account 1 is the operator, account 2 the treasury, and each of the 10 accounts gets
1,000,000 GENE. Elsewhere pass --operator and --treasury (and --token to use an existing
ERC-20), and give the deployer's key in DEPLOYER_PRIVATE_KEY.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from eth_account import Account

from ledger import chain
from ledger.localchain import LOCAL_CHAIN_ID, anvil_accounts
from ledger.services.deployment import GENE, contracts_deploy

DEFAULT_FEE_BPS = 250
LOCAL_MINT = 1_000_000 * GENE


class Command(BaseCommand):
    help = "Deploy the contracts to the configured chain (idempotent; --force to redeploy)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--operator")
        parser.add_argument("--treasury")
        parser.add_argument("--token", help="use this ERC-20 instead of deploying GeneToken")
        parser.add_argument("--fee-bps", type=int, default=DEFAULT_FEE_BPS)
        parser.add_argument("--force", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        chain_id = chain.chain_id()
        local = chain_id == LOCAL_CHAIN_ID
        accounts = anvil_accounts() if local else []
        key = os.environ.get("DEPLOYER_PRIVATE_KEY")
        if key:
            deployer = Account.from_key(key)
        elif local:
            deployer = accounts[0]
        else:
            raise CommandError("Set DEPLOYER_PRIVATE_KEY to deploy to a non-local chain.")
        operator = options["operator"] or (accounts[1].address if local else None)
        treasury = options["treasury"] or (accounts[2].address if local else None)
        if not operator or not treasury:
            raise CommandError("Pass --operator and --treasury for a non-local chain.")
        result = contracts_deploy(
            deployer=deployer,
            operator=operator,
            treasury=treasury,
            fee_bps=options["fee_bps"],
            token_address=options["token"],
            mint={account.address: LOCAL_MINT for account in accounts} if local else None,
            force=options["force"],
        )
        verb = "Deployed" if result.created else "Already deployed"
        self.stdout.write(f"{verb} on chain {result.chain_id}:")
        for row in (result.token, result.market):
            self.stdout.write(f"  {row.name:<7} {row.address}  (block {row.block_number})")
        if result.created and local:
            self.stdout.write("  minted 1,000,000 GENE to each of anvil's 10 accounts")
