/* The browser wallet (EIP-1193 `window.ethereum`) and the site's JSON API, for the
   wallet-linking and payment pages. Loaded as a file: the CSP allows no inline script. */
(function () {
  "use strict";

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (e) {
      return "";
    }
  }

  async function api(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
    let payload = {};
    try { payload = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) {
      const message = payload.error ? payload.error.message : "The server refused (" + response.status + ").";
      throw new Error(message);
    }
    return payload;
  }

  function provider() {
    if (!window.ethereum) {
      throw new Error("No browser wallet found. Install one (e.g. MetaMask) and reload the page.");
    }
    return window.ethereum;
  }

  async function request(method, params) {
    try {
      return await provider().request({ method: method, params: params || [] });
    } catch (error) {
      if (error && error.code === 4001) { throw new Error("You declined in the wallet."); }
      throw error instanceof Error ? error : new Error((error && error.message) || String(error));
    }
  }

  async function account() {
    const accounts = await request("eth_requestAccounts");
    if (!accounts || !accounts.length) { throw new Error("The wallet shared no account."); }
    return accounts[0];
  }

  function utf8Hex(text) {
    return "0x" + Array.from(new TextEncoder().encode(text))
      .map(function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  async function receipt(hash, onWait) {
    for (;;) {
      const found = await request("eth_getTransactionReceipt", [hash]);
      if (found) { return found; }
      if (onWait) { onWait(); }
      await new Promise(function (resolve) { setTimeout(resolve, 1000); });
    }
  }

  window.GeneWallet = { api: api, request: request, account: account, utf8Hex: utf8Hex, receipt: receipt };
})();
