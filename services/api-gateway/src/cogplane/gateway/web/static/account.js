// Account page: confirmations in a dialog, live hints for usernames, focus on a new token.
"use strict";

(() => {
  // Forms with data-confirm ask first, in a modal dialog (keyboard: Tab between the buttons,
  // Enter picks one, Escape cancels). Without this script the server asks on a page of its own.
  function confirmations() {
    const dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return;
    const message = document.getElementById("confirm-message");
    const title = document.getElementById("confirm-title");
    const yes = document.getElementById("confirm-yes");
    let pending = null;
    let opener = null;

    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (form.querySelector('input[name="confirm"]')) return;
        event.preventDefault();
        pending = form;
        opener = event.submitter || form.querySelector("button");
        Cogplane.text(message, form.dataset.confirm);
        Cogplane.text(title, form.dataset.confirmLabel ? `${form.dataset.confirmLabel}?` : "Are you sure?");
        Cogplane.text(yes, form.dataset.confirmLabel || "Confirm");
        dialog.returnValue = "";
        dialog.showModal();
      });
    });

    dialog.addEventListener("close", () => {
      const form = pending;
      pending = null;
      if (form && dialog.returnValue === "confirm") {
        const field = document.createElement("input");
        field.type = "hidden";
        field.name = "confirm";
        field.value = "yes";
        form.appendChild(field);
        form.submit();
      } else if (opener) {
        opener.focus();
      }
    });
  }

  // Username fields say as you type whether the name has the right shape.
  function usernameHints() {
    document.querySelectorAll("input[data-rule][pattern]").forEach((input) => {
      const hintId = (input.getAttribute("aria-describedby") || "").split(" ")[0];
      const hint = hintId && document.getElementById(hintId);
      if (!hint) return;
      const original = hint.textContent;
      input.addEventListener("input", () => {
        const value = input.value;
        if (!value) {
          Cogplane.text(hint, original);
          hint.classList.remove("ok", "error");
          input.removeAttribute("aria-invalid");
          return;
        }
        const bad = input.validity.patternMismatch || value.length > 39;
        Cogplane.text(hint, bad ? input.dataset.rule : `“${value}” has the right shape.`);
        hint.classList.toggle("error", bad);
        hint.classList.toggle("ok", !bad);
        if (bad) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      });
    });
  }

  // A token was just created: take the reader (and keyboard focus) to its secret.
  function focusNewToken() {
    const panel = document.getElementById("new-token-panel");
    if (panel) panel.focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    confirmations();
    usernameHints();
    focusNewToken();
  });
})();
