// Cogplane web app: the helpers every page shares (no third-party code).
"use strict";

const Cogplane = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  // Call the /v1 API with the session (the cookie) and its CSRF token.
  async function api(method, path, body, extraHeaders) {
    const headers = { "X-CSRF-Token": csrf(), ...(extraHeaders || {}) };
    const init = { method, headers, credentials: "same-origin" };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = { detail: text }; }
    return { ok: response.ok, status: response.status, data };
  }

  // Replace the text of an element (never HTML: user content is always text here).
  function text(el, value) { if (el) el.textContent = value == null ? "" : String(value); }

  // Show <time datetime="..."> in the reader's local time.
  function localTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.textContent = d.toLocaleString();
    });
  }

  // Copy buttons: <button data-copy="#id">.
  function copyButtons(root) {
    (root || document).querySelectorAll("button[data-copy]").forEach((button) => {
      button.addEventListener("click", async () => {
        const source = document.querySelector(button.dataset.copy);
        if (!source) return;
        try {
          await navigator.clipboard.writeText(source.textContent);
          button.textContent = "Copied";
        } catch (_) {
          const range = document.createRange();
          range.selectNodeContents(source);
          window.getSelection().removeAllRanges();
          window.getSelection().addRange(range);
          button.textContent = "Selected: press Ctrl+C";
        }
        setTimeout(() => { button.textContent = "Copy"; }, 2000);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => { localTimes(); copyButtons(); });
  return { api, text, localTimes, copyButtons, csrf };
})();
window.Cogplane = Cogplane;
