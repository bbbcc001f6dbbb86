/* Link a wallet with Sign-In with Ethereum: the server's challenge, signed by the wallet. */
(function () {
  "use strict";

  async function link(panel) {
    const wallet = window.GeneWallet;
    const error = panel.querySelector("[data-wallet-error]");
    const current = panel.querySelector("[data-wallet-current]");
    const button = panel.querySelector("[data-link-wallet]");
    error.hidden = true;
    button.disabled = true;
    try {
      const address = await wallet.account();
      current.textContent = "Sign the message in your wallet…";
      const challenge = await wallet.api("/api/v1/me/wallet/challenge", { address: address });
      const signature = await wallet.request("personal_sign", [wallet.utf8Hex(challenge.message), address]);
      const linked = await wallet.api("/api/v1/me/wallet", { message: challenge.message, signature: signature });
      current.textContent = "Linked: " + linked.wallet_address;
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      current.textContent = "Not linked.";
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-wallet-panel]").forEach(function (panel) {
      panel.querySelector("[data-link-wallet]").addEventListener("click", function () { link(panel); });
    });
  });
})();
