"""Compile the contracts with the pinned solc (the `solc` npm package) into committed JSON
artifacts: `python manage.py compile_contracts`.

Imports are resolved here (OpenZeppelin from node_modules) and every source is handed to
solc as content, so the compiler needs no file-system callback. Each artifact records the
SHA-256 of the sources it came from, so a test can tell when the artifacts are stale.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = CONTRACTS_DIR.parent.parent
NODE_MODULES = PROJECT_DIR / "node_modules"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
# The contracts of the product, and the test-only tokens (artifacts under artifacts/test/).
SOURCES = ["GeneToken.sol", "AccessMarket.sol"]
TEST_SOURCES = ["test/MockTokens.sol"]
# Test-only: Safe's own contracts (npm `@safe-global/safe-contracts`, pinned in package.json),
# the smart-contract wallet institutions use, for the EIP-1271 wallet-linking tests
# (artifacts under artifacts/test/safe/). LGPL-3.0, compiled unchanged.
SAFE = "@safe-global/safe-contracts/contracts"
SAFE_SOURCES = [
    f"{SAFE}/Safe.sol",
    f"{SAFE}/proxies/SafeProxy.sol",
    f"{SAFE}/handler/CompatibilityFallbackHandler.sol",
    f"{SAFE}/libraries/SignMessageLib.sol",
    f"{SAFE}/libraries/MultiSendCallOnly.sol",
]
EVM_VERSION = "cancun"
_IMPORT = re.compile(r'^\s*import\s+(?:[^"\']*from\s+)?["\']([^"\']+)["\']\s*;', re.MULTILINE)
_SOLC = (
    "const solc = require('solc');"
    "let input = '';"
    "process.stdin.on('data', d => input += d);"
    "process.stdin.on('end', () => process.stdout.write(solc.compile(input)));"
)


def _resolve(unit: str) -> Path:
    if unit.startswith("@"):
        return NODE_MODULES / unit
    return CONTRACTS_DIR / unit


def _collect(units: list[str]) -> dict[str, str]:
    """Every source the units need, by unit name, following imports."""
    sources: dict[str, str] = {}
    pending = list(units)
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = _resolve(unit).read_text()
        sources[unit] = text
        for imported in _IMPORT.findall(text):
            if imported.startswith("."):  # relative to the importing unit, as solc reads it
                imported = _normalise(f"{Path(unit).parent.as_posix()}/{imported}")
            pending.append(imported)
    return sources


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def sources_sha256(units: list[str]) -> str:
    digest = hashlib.sha256()
    for unit, text in sorted(_collect(units).items()):
        digest.update(unit.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("Node.js is needed to run the pinned solc (npm package `solc`)")
    return node


def solc_version() -> str:
    script = "process.stdout.write(require('solc').version())"
    return subprocess.run(  # noqa: S603 - our own node and script
        [_node(), "-e", script],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def compile_units(units: list[str]) -> dict[str, dict[str, object]]:
    """{contract name: artifact} for the contracts defined in `units`."""
    request = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in _collect(units).items()},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": EVM_VERSION,
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }
    done = subprocess.run(  # noqa: S603 - our own node and script
        [_node(), "-e", _SOLC],
        input=json.dumps(request),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    output = json.loads(done.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("\n".join(e["formattedMessage"] for e in errors))
    version, digest = solc_version(), sources_sha256(units)
    artifacts: dict[str, dict[str, object]] = {}
    for unit in units:
        for name, contract in output["contracts"][unit].items():
            if not contract["evm"]["bytecode"]["object"]:
                continue  # an interface: nothing to deploy
            artifacts[name] = {
                "contractName": name,
                "sourceUnit": unit,
                "abi": contract["abi"],
                "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
                "compiler": {"solc": version, "evmVersion": EVM_VERSION, "optimizerRuns": 200},
                "sourcesSha256": digest,
            }
    return artifacts


def artifact_groups(output_dir: Path = ARTIFACTS_DIR) -> list[tuple[list[str], Path]]:
    """(source units, artifact folder): the product's contracts, then the test-only ones."""
    return [
        (SOURCES, output_dir),
        (TEST_SOURCES, output_dir / "test"),
        (SAFE_SOURCES, output_dir / "test" / "safe"),
    ]


def compile_contracts(output_dir: Path = ARTIFACTS_DIR) -> list[Path]:
    """Write one JSON artifact per contract; test-only ones go under `output_dir/test/`."""
    written = []
    for units, folder in artifact_groups(output_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for name, artifact in compile_units(units).items():
            path = folder / f"{name}.json"
            path.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
            written.append(path)
    return written
