"""Compiled contract artifacts (committed JSON in ledger/contracts/artifacts/), by name."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TypedDict

ARTIFACTS_DIR = Path(__file__).resolve().parent / "contracts" / "artifacts"


class Artifact(TypedDict):
    contractName: str
    abi: list[dict[str, object]]
    bytecode: str


@lru_cache(maxsize=16)
def load_artifact(name: str) -> Artifact:
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise LookupError(
            f"no compiled artifact for {name!r}: run `manage.py compile_contracts`"
        ) from exc
    return Artifact(contractName=data["contractName"], abi=data["abi"], bytecode=data["bytecode"])
