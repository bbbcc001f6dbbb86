/* Paying a voucher from the browser wallet: one EIP-2612 permit signature and one
   transaction (payWithPermit), or approve then pay. The page shows each transaction and
   waits for it to be mined; the status panel above follows the request to its grant. */
(function () {
  "use strict";

  function data(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function pad(hex) { return hex.replace(/^0x/, "").toLowerCase().padStart(64, "0"); }

  function approveCall(spender, amount) {
    return "0x095ea7b3" + pad(spender) + pad(BigInt(amount).toString(16));
  }

  function step(list, text) {
    const item = document.createElement("li");
    item.textContent = text;
    list.appendChild(item);
    return item;
  }

  async function send(wallet, from, to, input, list, label) {
    const line = step(list, label + ": confirm in your wallet…");
    const hash = await wallet.request("eth_sendTransaction", [{ from: from, to: to, data: input }]);
    line.textContent = label + ": sent, transaction " + hash + " — waiting to be mined…";
    const mined = await wallet.receipt(hash);
    if (mined.status !== "0x1" && mined.status !== 1) {
      throw new Error(label + " failed on chain (transaction " + hash + ").");
    }
    line.textContent = label + ": mined in block " + parseInt(mined.blockNumber, 16) + " (" + hash + ").";
    line.dataset.txHash = hash;
    return hash;
  }

  async function pay(panel, mode) {
    const wallet = window.GeneWallet;
    const voucher = data("voucher-data");
    const permit = data("permit-data");
    const list = panel.querySelector("[data-pay-steps]");
    const error = panel.querySelector("[data-pay-error]");
    const buttons = panel.querySelectorAll("[data-pay]");
    const buyer = voucher.typed_data.message.buyer;
    error.hidden = true;
    list.textContent = "";
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      const from = await wallet.account();
      if (from.toLowerCase() !== buyer.toLowerCase()) {
        throw new Error("Your wallet is on " + from + "; switch it to the linked account " + buyer + ".");
      }
      const chainId = "0x" + Number(voucher.chain_id).toString(16);
      if ((await wallet.request("eth_chainId")).toLowerCase() !== chainId) {
        step(list, "Switching the wallet to chain " + voucher.chain_id + "…");
        await wallet.request("wallet_switchEthereumChain", [{ chainId: chainId }]);
      }
      if (mode === "permit" && permit) {
        const line = step(list, "Sign the permit in your wallet (no fee)…");
        const signature = await wallet.request("eth_signTypedData_v4", [from, JSON.stringify(permit)]);
        line.textContent = "Permit signed.";
        const call = await wallet.api(panel.dataset.permitUrl, { signature: signature });
        await send(wallet, from, call.to, call.data, list, "Payment");
      } else {
        await send(wallet, from, voucher.token, approveCall(voucher.market, voucher.amount), list, "Approval");
        await send(wallet, from, voucher.call.to, voucher.call.data, list, "Payment");
      }
      step(list, "Paid. Waiting for the payment to be confirmed on chain; your files follow.");
      panel.dataset.paid = "true";
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.querySelector("[data-pay-panel]");
    if (!panel) { return; }
    panel.querySelectorAll("[data-pay]").forEach(function (button) {
      button.addEventListener("click", function () { pay(panel, button.dataset.pay); });
    });
    // Once the request has moved on (paid, granted), the payment buttons go away.
    document.body.addEventListener("htmx:afterSwap", function () {
      const status = document.getElementById("request-status");
      if (status && status.dataset.state !== "payable") {
        panel.querySelectorAll("[data-pay], details").forEach(function (node) { node.hidden = true; });
      }
    });
  });
})();
