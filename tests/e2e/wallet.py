"""An EIP-1193 provider injected into the page, as a wallet extension would be: accounts
and signatures come from a dev key held by the test, everything else goes to anvil."""

from __future__ import annotations

import json
from typing import Any

import requests
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Page
from web3 import Web3

PROVIDER_JS = """
(() => {
  const listeners = {};
  window.ethereum = {
    isGeneBrowserWallet: true,
    request: async ({ method, params }) => {
      const answer = await window.__geneWallet(method, params || []);
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.result;
    },
    on: (event, handler) => { (listeners[event] = listeners[event] || []).push(handler); },
    removeListener: () => {},
  };
})();
"""


def _uints_as_ints(typed: dict[str, Any]) -> dict[str, Any]:
    """eth_account wants Python ints where the page sent decimal strings."""
    types = typed["types"]

    def convert(struct: str, values: dict[str, Any]) -> dict[str, Any]:
        out = dict(values)
        for field in types.get(struct, []):
            name, kind = field["name"], field["type"]
            if name in out and kind.startswith(("uint", "int")) and isinstance(out[name], str):
                out[name] = int(out[name], 0) if out[name].startswith("0x") else int(out[name])
            elif kind in types and isinstance(out.get(name), dict):
                out[name] = convert(kind, out[name])
        return out

    return {
        **typed,
        "domain": convert("EIP712Domain", typed["domain"]),
        "message": convert(typed["primaryType"], typed["message"]),
    }


class BrowserWallet:
    """Answers the page's wallet calls for one account on one anvil."""

    def __init__(self, account: LocalAccount, rpc_url: str) -> None:
        self.account = account
        self.rpc_url = rpc_url
        self.w3 = Web3(Web3.HTTPProvider(rpc_url))
        self.sent: list[str] = []

    def install(self, page: Page) -> None:
        page.expose_function("__geneWallet", self.handle)
        page.add_init_script(PROVIDER_JS)

    def handle(self, method: str, params: list[Any]) -> dict[str, Any]:
        try:
            return {"result": self._answer(method, params)}
        except Exception as exc:
            return {"error": {"code": -32603, "message": str(exc)}}

    def _answer(self, method: str, params: list[Any]) -> Any:
        address = self.account.address
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [address]
        if method == "personal_sign":
            message, signer = params[0], params[1]
            assert signer.lower() == address.lower(), "asked to sign for another account"
            signed = self.account.sign_message(encode_defunct(hexstr=message))
            return "0x" + signed.signature.hex().removeprefix("0x")
        if method == "eth_signTypedData_v4":
            signer, payload = params[0], params[1]
            assert signer.lower() == address.lower(), "asked to sign for another account"
            typed = _uints_as_ints(json.loads(payload) if isinstance(payload, str) else payload)
            signed = self.account.sign_typed_data(full_message=typed)
            return "0x" + signed.signature.hex().removeprefix("0x")
        if method == "eth_sendTransaction":
            tx = dict(params[0])
            assert tx["from"].lower() == address.lower()
            prepared = {
                "from": address,
                "to": Web3.to_checksum_address(tx["to"]),
                "data": tx.get("data", "0x"),
                "value": int(tx.get("value", "0x0"), 16),
                "nonce": self.w3.eth.get_transaction_count(address, "pending"),
                "chainId": self.w3.eth.chain_id,
                "maxPriorityFeePerGas": 10**9,
                "maxFeePerGas": self.w3.eth.gas_price * 2 + 10**9,
            }
            prepared["gas"] = int(self.w3.eth.estimate_gas(prepared) * 1.3)  # type: ignore[arg-type]
            raw = self.account.sign_transaction(prepared).raw_transaction
            tx_hash = self.w3.eth.send_raw_transaction(raw)
            self.sent.append(Web3.to_hex(tx_hash))
            return Web3.to_hex(tx_hash)
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        answer = requests.post(self.rpc_url, json=body, timeout=10).json()
        if "error" in answer:
            raise RuntimeError(answer["error"].get("message", "RPC error"))
        return answer["result"]
