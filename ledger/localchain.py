"""A local anvil node for `make run` and the tests: where its binary is and how to wait
for it. anvil comes pinned from the `@foundry-rs/anvil` npm package (package.json)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

PROJECT_DIR = Path(__file__).resolve().parent.parent
ANVIL_BINARY = PROJECT_DIR / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
LOCAL_CHAIN_ID = 31337


class AnvilMissing(RuntimeError):
    pass


def anvil_argv(
    *,
    port: int,
    block_time_s: float | None = 1.0,
    host: str = "127.0.0.1",
    state_path: Path | None = None,
) -> list[str]:
    """The command line of a local anvil.

    A block time makes blocks arrive without transactions, so confirmations advance the
    way they do on a real chain; tests that mine by hand pass `block_time_s=None`. With
    `state_path`, anvil loads its chain from that file and saves it on exit, so `make run`
    keeps its contracts and balances across restarts.
    """
    if ANVIL_BINARY.exists():
        binary = [str(ANVIL_BINARY)]
    elif npx := shutil.which("npx"):
        binary = [npx, "--no-install", "anvil"]
    else:
        raise AnvilMissing("anvil is not installed: run `npm ci` (package.json pins it)")
    argv = [
        *binary,
        "--host",
        host,
        "--port",
        str(port),
        "--chain-id",
        str(LOCAL_CHAIN_ID),
        "--silent",
    ]
    if block_time_s is not None:
        argv += ["--block-time", str(block_time_s)]
    if state_path is not None:
        argv += ["--state", str(state_path)]
    return argv


def rpc_answers(url: str, timeout_s: float = 1.0) -> bool:
    """True when a JSON-RPC node answers `eth_chainId` at `url`."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP JSON-RPC URL: {url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return "result" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def wait_for_rpc(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if rpc_answers(url):
            return
        time.sleep(0.1)
    raise TimeoutError(f"no JSON-RPC answer at {url} within {timeout_s:.0f}s")


ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def anvil_accounts(count: int = 10) -> list[LocalAccount]:
    """anvil's default accounts (public test keys, funded with ETH on every anvil)."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        for index in range(count)
    ]
