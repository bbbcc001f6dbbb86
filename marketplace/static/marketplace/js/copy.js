// Copy buttons for commands (issue 16 §12): no framework, no inline script (CSP).
// One listener on the document, so commands that htmx swaps in later work too.
(function () {
  "use strict";
  document.documentElement.classList.add("js"); // copy buttons show only when this runs

  function fallbackCopy(text) {
    // Pages served over plain http (other than localhost) have no navigator.clipboard.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var box = button.closest(".command-box");
    var source = box && box.querySelector("pre");
    if (!source) { return; }
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    copy(source.textContent).then(function () {
      button.textContent = "Copied";
    }, function () {
      button.textContent = "Select and copy it by hand";
    });
    window.setTimeout(function () { button.textContent = label; }, 2500);
  });
})();
