/* Link a wallet with Sign-In with Ethereum: the server's challenge, signed by the wallet.
   A smart-contract wallet (a Safe) signs through its owners (EIP-1271), which the server
   checks; a Safe set to sign on chain answers "0x" and approves the message in a Safe
   transaction instead: the page then waits until the wallet's isValidSignature accepts the
   message with no signature, and links only then (a refused attempt would spend the
   challenge). */
(function () {
  "use strict";

  const EIP1271_MAGIC = "0x1626ba7e";
  const WAIT_MS = 3000;

  function word(hex) { return hex.replace(/^0x/, "").padStart(64, "0"); }

  // isValidSignature(bytes32 hash, bytes signature) with an empty signature (ABI encoded).
  function emptySignatureCheck(hash) {
    return EIP1271_MAGIC + word(hash) + word("40") + word("0");
  }

  async function approvedOnChain(wallet, address, challenge, current) {
    const deadline = Date.parse(challenge.expires_at);
    current.textContent = "Your wallet approves the message on chain (a Safe transaction): " +
      "waiting for the transaction to be executed…";
    while (Date.now() < deadline) {
      try {
        const answer = await wallet.request("eth_call", [
          { to: address, data: emptySignatureCheck(challenge.message_hash) }, "latest",
        ]);
        if (String(answer).toLowerCase().startsWith(EIP1271_MAGIC)) { return; }
      } catch (e) { /* not approved yet: a Safe's check reverts until then */ }
      await new Promise(function (resolve) { setTimeout(resolve, WAIT_MS); });
    }
    throw new Error("The wallet did not approve the message on chain in time: link again.");
  }

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
      if (signature === "0x") { await approvedOnChain(wallet, address, challenge, current); }
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
