// Cogplane web app: the model pages: the Run tab's form (files uploaded through /v1/files, the
// prediction created and followed live), the new-model name hint, waiting for a first version.
"use strict";

(() => {
  const P = window.CogplanePredictions;

  // -- the create form: a live hint on the model name ------------------------------------------

  function nameProblem(name) {
    if (name.length > 100) return "At most 100 characters";
    if (/[A-Z]/.test(name)) return "Use lowercase letters only";
    if (/[^a-z0-9._-]/.test(name)) return "Only lowercase letters, digits, dashes, underscores and dots";
    if (/^[.-]/.test(name)) return "Start with a letter, a digit or an underscore";
    if (/-$/.test(name)) return "End with a letter, a digit, an underscore or a dot";
    return "Not a valid name";
  }

  function initNameHint() {
    const form = document.getElementById("new-model");
    const input = document.getElementById("name");
    const owner = document.getElementById("owner");
    const hint = document.getElementById("name-hint");
    if (!form || !input || !owner || !hint) return;
    const pattern = new RegExp(input.dataset.pattern);
    const initial = hint.textContent;
    let timer = null;
    let asked = 0;
    const show = (text, state) => {
      hint.textContent = text;
      hint.className = `hint ${state || ""}`;
      if (state === "bad") input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    };
    async function check() {
      const name = input.value;
      const full = `${owner.value}/${name}`;
      if (!name) return show(initial);
      if (!pattern.test(name)) return show(`${nameProblem(name)}.`, "bad");
      show(`${full} is a valid name…`, "good");
      const mine = ++asked;
      const res = await Cogplane.api("GET", `/v1/models/${encodeURIComponent(owner.value)}/${encodeURIComponent(name)}`).catch(() => null);
      if (mine !== asked || !res) return;
      if (res.status === 200) show(`${full} already exists.`, "bad");
      else if (res.status === 404) show(`${full} is available.`, "good");
    }
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 200); });
    owner.addEventListener("change", check);
    if (input.value && !input.hasAttribute("aria-invalid")) check();
  }

  // -- a model without versions: show the first one as soon as it is built ----------------------

  function initAwaitVersion() {
    const box = document.querySelector("[data-await-version]");
    if (!box) return;
    const [owner, name] = box.dataset.awaitVersion.split("/");
    const path = `/v1/models/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
    const timer = setInterval(async () => {
      const res = await Cogplane.api("GET", path).catch(() => null);
      if (res && res.ok && res.data && res.data.latest_version) {
        clearInterval(timer);
        location.reload();
      }
    }, 2000);
  }

  function initConfirm() {
    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  // -- the Run tab -----------------------------------------------------------------------------

  const control = (field) => document.getElementById(`in-${field.dataset.name}`);
  const urlControl = (field) => document.getElementById(`url-${field.dataset.name}`);

  function lines(text) {
    return text.split("\n").map((x) => x.trim()).filter((x) => x);
  }

  // What is wrong with a field's value, in words ("" when nothing is): hints as one types.
  function clientProblem(field) {
    const kind = field.dataset.kind;
    const input = control(field);
    if (!input || kind === "boolean") return "";
    const data = field.dataset;
    const value = input.value;
    const empty = kind === "file" || kind === "files"
      ? !input.files.length && !urlControl(field).value.trim()
      : value.trim() === "";
    if (empty) return data.required === "true" ? "Required" : "";
    if (kind === "integer" || kind === "number") {
      const number = Number(value);
      if (!Number.isFinite(number)) return "Not a number";
      if (kind === "integer" && !Number.isInteger(number)) return "Must be a whole number";
      if (data.min !== undefined && number < Number(data.min)) return `Must be at least ${Number(data.min)}`;
      if (data.max !== undefined && number > Number(data.max)) return `Must be at most ${Number(data.max)}`;
    }
    if (kind === "text" || kind === "textarea") {
      const length = [...value].length;
      if (data.minLength !== undefined && length < Number(data.minLength)) return `At least ${data.minLength} characters`;
      if (data.maxLength !== undefined && length > Number(data.maxLength)) return `At most ${data.maxLength} characters`;
      if (data.pattern) {
        try { if (!new RegExp(data.pattern, "u").test(value)) return `Must match ${data.pattern}`; } catch (_) { /* a pattern JS cannot read: the server checks it */ }
      }
    }
    if (kind === "json") {
      try { JSON.parse(value); } catch (_) { return "Not valid JSON"; }
    }
    if (kind === "list" && ["integer", "number"].includes(data.items)) {
      if (lines(value).some((x) => !Number.isFinite(Number(x)))) return "One number per line";
    }
    return "";
  }

  function showProblem(field, message) {
    const slot = document.getElementById(`err-${field.dataset.name}`);
    const input = control(field);
    if (slot) slot.textContent = message || "";
    if (input) {
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  class FieldError extends Error {
    constructor(field, message) { super(message); this.field = field; }
  }

  async function upload(file) {
    const body = new FormData();
    body.append("content", file, file.name);
    const res = await Cogplane.api("POST", "/v1/files", body);
    if (!res.ok) throw new Error((res.data && res.data.detail) || `The upload of ${file.name} failed (${res.status})`);
    return res.data.urls.get;
  }

  function typed(text, kind) {
    if (kind === "integer" || kind === "number") return Number(text);
    return text;
  }

  // The input object of the form; files are uploaded first (their URLs are sent).
  async function collect(form, say) {
    const input = {};
    for (const field of form.querySelectorAll(".field[data-kind]")) {
      const name = field.dataset.name;
      const kind = field.dataset.kind;
      const el = control(field);
      if (kind === "boolean") { input[name] = el.checked; continue; }
      if (kind === "file" || kind === "files") {
        const urls = [];
        for (const file of el.files) {
          say(`Uploading ${file.name}…`);
          urls.push(await upload(file));
        }
        const typedUrls = kind === "files" ? lines(urlControl(field).value) : [urlControl(field).value.trim()].filter((x) => x);
        const all = urls.concat(typedUrls);
        if (all.length) input[name] = kind === "files" ? all : all[0];
        continue;
      }
      const value = el.value;
      if (value.trim() === "") continue;
      if (kind === "choice") input[name] = JSON.parse(value);
      else if (kind === "integer" || kind === "number") input[name] = Number(value);
      else if (kind === "list") input[name] = lines(value).map((x) => typed(x, field.dataset.items));
      else if (kind === "json") {
        try { input[name] = JSON.parse(value); } catch (_) { throw new FieldError(field, "Not valid JSON"); }
      } else input[name] = value;
    }
    return input;
  }

  // The form field an entry of the API's invalid_fields is about (``input.width``, or
  // ``input`` with "text is required").
  function fieldOf(form, invalid) {
    const path = String(invalid.field || "");
    let name = null;
    if (path.startsWith("input.")) name = path.slice(6).split(".")[0];
    else if (path === "input") {
      const found = /^(\S+) is required/.exec(String(invalid.description || ""));
      name = found && found[1];
    }
    if (!name) return null;
    return [...form.querySelectorAll(".field[data-name]")].find((f) => f.dataset.name === name) || null;
  }

  function initRunForm() {
    const form = document.getElementById("run-form");
    if (!form) return;
    const schema = P.jsonBlock("output-schema") || {};
    const runButton = document.getElementById("run-button");
    const cancelButton = document.getElementById("cancel-button");
    const status = document.getElementById("run-status");
    const output = document.getElementById("output");
    const logs = document.getElementById("logs");
    const metrics = document.getElementById("run-metrics");
    const runError = document.getElementById("run-error");
    const links = document.getElementById("run-links");
    const fields = () => [...form.querySelectorAll(".field[data-kind]")];
    let follower = null;

    form.querySelectorAll("input[type=range][data-mirror]").forEach((range) => {
      const number = document.getElementById(range.dataset.mirror);
      range.addEventListener("input", () => {
        number.value = range.value;
        number.dispatchEvent(new Event("input", { bubbles: true }));
      });
      number.addEventListener("input", () => {
        if (number.value !== "" && Number.isFinite(Number(number.value))) range.value = number.value;
      });
    });
    const hint = (event) => {
      const field = event.target.closest(".field[data-kind]");
      if (field) showProblem(field, clientProblem(field));
    };
    form.addEventListener("input", hint);
    form.addEventListener("change", hint);
    form.addEventListener("reset", () => setTimeout(() => {
      fields().forEach((f) => showProblem(f, ""));
      runError.textContent = "";
      form.querySelectorAll("input[type=range][data-mirror]").forEach((range) => {
        const number = document.getElementById(range.dataset.mirror);
        if (number.value !== "") range.value = number.value;
      });
    }, 0));

    const say = (text) => { status.replaceChildren(); status.textContent = text; };

    function show(prediction) {
      const done = P.TERMINAL.has(prediction.status);
      P.renderStatus(status, prediction);
      P.renderOutput(output, prediction.output, schema, !done);
      output.setAttribute("aria-busy", done ? "false" : "true");
      P.renderLogs(logs, prediction.logs);
      P.renderMetrics(metrics, prediction);
      cancelButton.disabled = done;
      if (done) runButton.disabled = false;
    }

    cancelButton.addEventListener("click", async () => {
      if (!follower) return;
      cancelButton.disabled = true;
      const res = await follower.cancel();
      if (!res.ok) {
        cancelButton.disabled = false;
        runError.textContent = (res.data && res.data.detail) || `Could not cancel (${res.status})`;
      }
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      fields().forEach((f) => showProblem(f, ""));
      runError.textContent = "";
      runButton.disabled = true;
      let input;
      try {
        input = await collect(form, say);
      } catch (err) {
        runButton.disabled = false;
        if (err instanceof FieldError) { showProblem(err.field, err.message); control(err.field).focus(); }
        else runError.textContent = err.message;
        say("Nothing was run.");
        return;
      }
      say("Starting…");
      const res = await Cogplane.api("POST", "/v1/predictions", { version: form.dataset.version, input });
      if (!res.ok) {
        runButton.disabled = false;
        const invalid = (res.data && res.data.invalid_fields) || [];
        const byField = new Map();
        const other = [];
        invalid.forEach((item) => {
          const field = fieldOf(form, item);
          if (field) byField.set(field, [byField.get(field), item.description].filter((x) => x).join(" "));
          else other.push(`${item.field}: ${item.description}`);
        });
        byField.forEach((message, field) => showProblem(field, message));
        runError.textContent = other.length || !invalid.length
          ? other.join(" ") || (res.data && res.data.detail) || `The prediction was not created (${res.status})`
          : "";
        const first = fields().find((f) => byField.has(f));
        say(res.status === 422 ? "Check the highlighted inputs." : "Nothing was run.");
        if (first) control(first).focus();
        return;
      }
      if (follower) follower.stop();
      const prediction = res.data;
      output.dataset.rendered = "";
      const model = form.dataset.model;
      document.getElementById("link-prediction").href = `/p/${encodeURIComponent(prediction.id)}`;
      document.getElementById("link-api").href =
        `/models/${model}/api?version=${encodeURIComponent(form.dataset.version)}&prediction=${encodeURIComponent(prediction.id)}`;
      links.hidden = false;
      show(prediction);
      follower = P.follow(prediction, schema, show);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    initNameHint();
    initAwaitVersion();
    initConfirm();
    initRunForm();
  });
})();
