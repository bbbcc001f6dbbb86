/* Resumable uploads with tus-js-client: a progress bar, retries, and resume after a reload
   (tus-js-client keeps the upload's URL in localStorage; choosing the same file again
   continues from the server's offset). An upload the server refused, or that has ended
   (any 4xx but 409/423, the answers tus-js-client itself does not retry), can never be
   resumed: its stored URL is removed at once, so choosing a file again starts a new upload,
   and the page says so. Loaded as a file: the CSP allows no inline script. */
(function () {
  "use strict";

  function formatBytes(n) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return n.toFixed(i ? 1 : 0) + " " + units[i];
  }

  // tus-js-client's own rule (defaultOnShouldRetry): a 4xx other than 409 and 423 is final.
  function isFinal(error) {
    const response = error.originalResponse;
    const status = response ? response.getStatus() : 0;
    return status >= 400 && status < 500 && status !== 409 && status !== 423;
  }

  // Signed out meanwhile (a sign-out in another tab, an expired session: 401), or signed in
  // again elsewhere, which gives the session a new CSRF token this page does not hold (403
  // "CSRF Failed"): the upload itself is intact on the server, so its resume entry is kept.
  function signedOut(error, message) {
    const response = error.originalResponse;
    const status = response ? response.getStatus() : 0;
    return status === 401 || (status === 403 && /CSRF/i.test(message));
  }

  // Say what to do next, with the link that does it.
  function sayWithLink(element, text, linkText, href) {
    const link = document.createElement("a");
    link.href = href;
    link.textContent = linkText;
    element.replaceChildren(document.createTextNode(text + " "), link, document.createTextNode("."));
  }

  // Forget every stored resume entry of this file (tus-js-client's public storage API).
  function forgetResume(upload) {
    const storage = window.tus.defaultOptions.urlStorage;
    return upload.findPreviousUploads().then(function (previous) {
      return Promise.all(previous.map(function (entry) {
        return storage.removeUpload(entry.urlStorageKey);
      }));
    }).catch(function () { /* no storage (private mode): nothing to forget */ });
  }

  function start(form) {
    const input = form.querySelector("input[type=file]");
    const bar = form.querySelector("progress");
    const status = form.querySelector("[data-upload-status]");
    const button = form.querySelector("button[type=submit]");
    const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    const file = input.files[0];
    if (!file) { status.textContent = "Choose a file first."; input.focus(); return; }

    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    status.textContent = "Starting…";
    status.classList.remove("field-error");
    let resumedFrom = null;
    const upload = new window.tus.Upload(file, {
      endpoint: form.dataset.endpoint,
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata: { filename: file.name },
      headers: { "X-CSRFToken": csrf },
      removeFingerprintOnSuccess: true,
      onError: function (error) {
        let message = "The upload stopped.";
        const body = error.originalResponse && error.originalResponse.getBody();
        try { message = JSON.parse(body).error.message; } catch (e) { /* not our JSON */ }
        status.classList.add("field-error");
        if (signedOut(error, message)) {
          const back = window.location.pathname;
          sayWithLink(status, "You were signed out (in another tab, or the session ended), so " +
            "the upload paused; what was sent is kept. Sign in again, then choose the same file " +
            "on this page: it resumes where it stopped.", "Sign in again",
            form.dataset.loginUrl + "?next=" + encodeURIComponent(back));
          button.disabled = false;
          return;
        }
        if (!isFinal(error)) {
          status.textContent = message + " Choose the same file again to resume.";
          button.disabled = false;
          return;
        }
        const gone = error.originalResponse.getStatus() === 410;  // the server said so already
        forgetResume(upload).then(function () {
          status.textContent = message + (gone ? " Choosing a file again starts a new upload." :
            " This upload cannot be resumed: choosing a file again starts a new upload.");
          button.disabled = false;
        });
      },
      onProgress: function (sent, total) {
        bar.max = total;
        bar.value = sent;
        if (resumedFrom === null) { resumedFrom = sent; }
        status.textContent = (resumedFrom > 0 ? "Resumed from " + formatBytes(resumedFrom) + ". " : "") +
          "Uploading: " + formatBytes(sent) + " of " + formatBytes(total) +
          " (" + Math.floor((sent / total) * 100) + "%)";
      },
      onSuccess: function () {
        status.textContent = (resumedFrom > 0 ? "Resumed and uploaded. " : "Uploaded. ") +
          "The vault is checking the file…";
        button.disabled = false;
        form.reset();
        document.body.dispatchEvent(new Event("files-changed"));
      },
    });
    upload.findPreviousUploads().then(function (previous) {
      if (previous.length) {
        status.textContent = "Resuming an earlier upload of this file…";
        upload.resumeFromPreviousUpload(previous[0]);
      } else {
        resumedFrom = 0;
      }
      upload.start();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-upload-form]").forEach(function (form) {
      form.addEventListener("submit", function (event) { event.preventDefault(); start(form); });
    });
  });
})();
