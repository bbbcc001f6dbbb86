"""The committed contract artifacts are what the sources compile to with the pinned solc."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.contracts.compiler import (
    ARTIFACTS_DIR,
    SOURCES,
    artifact_groups,
    compile_units,
    sources_sha256,
)


def committed(folder: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}


def test_artifacts_are_not_stale() -> None:
    """Fails after a .sol edit until `python manage.py compile_contracts` is run again."""
    for units, folder in artifact_groups():
        digest = sources_sha256(units)
        artifacts = committed(folder)
        assert artifacts, f"no artifacts in {folder}"
        for name, artifact in artifacts.items():
            assert artifact["sourcesSha256"] == digest, f"{name} is stale: recompile"
    # The product's contracts are recompiled and compared byte for byte; the test-only ones
    # (mock tokens, Safe's pinned sources) are held to their sources' digest above.
    fresh = compile_units(SOURCES)
    for name, artifact in committed(ARTIFACTS_DIR).items():
        assert fresh[name]["bytecode"] == artifact["bytecode"], f"{name} bytecode differs"
        assert fresh[name]["abi"] == artifact["abi"]
