"""Slither on the contracts, with the pinned solc from npm (`make slither`, not in CI).

Slither runs solc through crytic-compile; there is no native solc here, so `scripts/solc`
puts solc-js behind solc's command line and the sources go in as solc standard JSON, the
same inputs `ledger/contracts/compiler.py` compiles. Every High or Medium finding in our
contracts must be explained in ledger/contracts/SECURITY.md (a line naming the detector
and the element, e.g. "`uninitialized-state` `AccessMarket.escrows`"); findings inside
OpenZeppelin are upstream's and are listed but not failed on. Exit 1 on any unexplained.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from crytic_compile import CryticCompile  # noqa: E402
from crytic_compile.platform.solc_standard_json import SolcStandardJson  # noqa: E402
from slither import Slither  # noqa: E402
from slither.detectors import all_detectors  # noqa: E402
from slither.detectors.abstract_detector import AbstractDetector  # noqa: E402

from ledger.contracts.compiler import EVM_VERSION, SOURCES, _collect  # noqa: E402

CONTRACTS = PROJECT / "ledger" / "contracts"
EXPLAINED = re.compile(r"`([a-z0-9-]+)`\s+`([A-Za-z0-9_.]+)`")


def main() -> int:
    sources = _collect(list(SOURCES))
    work = Path(tempfile.mkdtemp(prefix="slither-"))
    (work / "@openzeppelin").symlink_to(PROJECT / "node_modules" / "@openzeppelin")
    for unit in sources:
        if not unit.startswith("@"):
            (work / unit).parent.mkdir(parents=True, exist_ok=True)
            (work / unit).symlink_to(CONTRACTS / unit)
    os.chdir(work)  # crytic-compile finds each source unit from here
    standard = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": {"evmVersion": EVM_VERSION, "optimizer": {"enabled": True, "runs": 200}},
    }
    compiled = CryticCompile(SolcStandardJson(standard), solc=str(PROJECT / "scripts" / "solc"))
    slither = Slither(compiled)
    for _, detector in inspect.getmembers(all_detectors, inspect.isclass):
        if issubclass(detector, AbstractDetector):
            slither.register_detector(detector)
    explained = set(EXPLAINED.findall((CONTRACTS / "SECURITY.md").read_text()))
    unexplained, upstream, accepted = [], 0, 0
    for finding in (f for group in slither.run_detectors() for f in group):
        if finding["impact"] not in ("High", "Medium"):
            continue
        elements = finding.get("elements") or [{}]
        files = {e.get("source_mapping", {}).get("filename_relative", "") for e in elements}
        if all(name.startswith("@openzeppelin") for name in files if name):
            upstream += 1
            continue
        first = elements[0]
        parent = first.get("type_specific_fields", {}).get("parent", {}).get("name", "")
        element = f"{parent}.{first.get('name', '')}" if parent else first.get("name", "")
        if (finding["check"], element) in explained:
            accepted += 1
            print(f"explained  {finding['impact']:<6} {finding['check']} {element}")
        else:
            unexplained.append(f"{finding['impact']} {finding['check']} {element}")
            print(f"UNEXPLAINED {finding['impact']:<6} {finding['check']} {element}")
            print("    " + finding["description"].strip().replace("\n", "\n    "))
    print(
        f"\nSlither: {len(unexplained)} unexplained high/medium findings in our contracts, "
        f"{accepted} explained in ledger/contracts/SECURITY.md, {upstream} inside OpenZeppelin."
    )
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
