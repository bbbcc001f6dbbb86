"""Compile the Solidity contracts with the pinned solc into ledger/contracts/artifacts/."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ledger.contracts.compiler import compile_contracts, solc_version


class Command(BaseCommand):
    help = "Compile ledger/contracts/*.sol with the pinned solc npm package (commit the result)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"solc {solc_version()}")
        for path in compile_contracts():
            self.stdout.write(f"  wrote {path}")
