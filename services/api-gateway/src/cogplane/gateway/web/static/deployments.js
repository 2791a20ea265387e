// Deployment pages: the live cost estimate, the model's versions, and the deployment's live
// instances, charts, decisions and run box. Data is only ever set as text (never as HTML).
"use strict";

(() => {
  const C = window.Cogplane;
  const qs = (selector, root) => (root || document).querySelector(selector);
  const STATES = ["pending", "booting", "setting_up", "idle", "processing", "draining"];
  const LABELS = {
    pending: "Pending", booting: "Booting", setting_up: "Setting up", idle: "Idle",
    processing: "Processing", draining: "Draining", failed: "Failed",
  };
  const FINISHED = ["succeeded", "failed", "canceled", "aborted"];

  function el(tag, text, className) {
    const found = document.createElement(tag);
    if (className) found.className = className;
    if (text != null) found.textContent = String(text);
    return found;
  }

  // "$1,234.56" from the API's decimal string (kept exact: no floats), with at least `places`
  // decimals ("$0.000100" for a price per second).
  function money(value, places) {
    const [whole, fraction] = String(value).split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const decimals = (fraction || "").padEnd(places === undefined ? 2 : places, "0");
    return `$${grouped}${decimals ? "." + decimals : ""}`;
  }

  function problem(res) {
    const data = res.data || {};
    const fields = data.invalid_fields || [];
    if (fields.length) return fields.map((f) => f.description).join("; ");
    return data.detail || `The request failed (${res.status})`;
  }

  // Run fn now and again every ms (slower while the tab is hidden), never two at once.
  function poll(fn, ms) {
    const tick = async () => {
      try { await fn(); } catch (_) { /* the next round tries again */ }
      setTimeout(tick, document.hidden ? ms * 5 : ms);
    };
    tick();
  }

  // ---- The cost estimate beside a deployment form, from GET /v1/billing/estimate.
  function estimate(form, panel) {
    const slot = (name) => panel.querySelector(`[data-estimate="${name}"]`);
    const values = ["price_per_second", "per_hour_at_min", "per_hour_at_max", "per_month_at_min", "per_month_at_max"];
    let timer = null;
    let asked = 0;

    function clear(message) {
      for (const name of values) C.text(slot(name), "—");
      C.text(slot("status"), message);
      panel.dataset.state = "error";
    }

    async function refresh() {
      const hardware = form.elements.hardware.value;
      const low = form.elements.min_instances.value.trim();
      const high = form.elements.max_instances.value.trim();
      C.text(slot("min_instances"), low || "–");
      C.text(slot("max_instances"), high || "–");
      if (!/^\d+$/.test(low) || !/^\d+$/.test(high)) return clear("Enter whole numbers of instances.");
      const number = ++asked;
      panel.setAttribute("aria-busy", "true");
      const query = new URLSearchParams({ hardware, min_instances: low, max_instances: high });
      const res = await C.api("GET", `/v1/billing/estimate?${query}`);
      if (number !== asked) return; // a newer question is on its way
      panel.removeAttribute("aria-busy");
      if (!res.ok) return clear(problem(res));
      const found = res.data;
      for (const name of values) C.text(slot(name), money(found[name], name === "price_per_second" ? 6 : 2));
      C.text(slot("hours_per_month"), found.hours_per_month);
      const plural = (n) => `${n} instance${n === 1 ? "" : "s"}`;
      C.text(slot("status"), `${plural(found.min_instances)} to ${plural(found.max_instances)} of ${found.hardware}: ${money(found.per_hour_at_min)} to ${money(found.per_hour_at_max)} per hour.`);
      panel.dataset.state = "ok";
    }

    const later = (event) => {
      if (!event.target.hasAttribute("data-estimate-input")) return;
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    };
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    refresh();
  }

  // ---- The version picker follows the model picker.
  function versions(form) {
    const model = qs("[data-model-picker]", form);
    const select = qs("[data-versions]", form);
    if (!model || !select) return;
    model.addEventListener("change", async () => {
      const [owner, name] = model.value.split("/");
      select.disabled = true;
      const path = `/v1/models/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/versions`;
      const res = await C.api("GET", path);
      const options = [new Option("Latest version", "", true, true)];
      for (const v of (res.ok ? res.data.results : [])) {
        const when = new Date(v.created_at);
        options.push(new Option(`${v.id.slice(0, 12)} · ${isNaN(when) ? "" : when.toLocaleString()}`, v.id));
      }
      select.replaceChildren(...options);
      select.disabled = false;
    });
  }

  function age(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 90) return `${seconds} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${Math.round(seconds / 3600)} h`;
  }

  // ---- Instances by state, polled every 1.5 s.
  function instances(section, api) {
    const body = qs("[data-instances-body]", section);
    const empty = qs("[data-instances-empty]", section);
    const updated = qs("[data-instances-updated]", section);
    const order = (state) => (STATES.indexOf(state) + 7) % 7;

    function row(item) {
      const tr = document.createElement("tr");
      tr.dataset.state = item.state;
      tr.dataset.instance = item.id;
      const id = el("td", item.id.slice(0, 12), "mono");
      id.title = item.id;
      const state = el("td");
      state.append(el("span", LABELS[item.state] || item.state, `badge state-${item.state}`));
      if (item.reason) state.append(el("div", item.reason, "hint reason"));
      const since = el("td", age(item.since));
      since.title = new Date(item.since).toLocaleString();
      tr.append(id, state, since, el("td", `#${item.release}`), el("td", `${item.busy}/${item.slots}`), el("td", item.node || "—"));
      return tr;
    }

    poll(async () => {
      const res = await C.api("GET", `${api}/instances`);
      if (!res.ok) { C.text(updated, `Not updated: ${problem(res)}`); return; }
      const list = res.data.results.slice().sort((a, b) => order(a.state) - order(b.state) || a.created_at.localeCompare(b.created_at));
      const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
      for (const item of list) counts[item.state] = (counts[item.state] || 0) + 1;
      for (const s of STATES) C.text(qs(`[data-state-count="${s}"]`, section), counts[s]);
      body.replaceChildren(...list.map(row));
      empty.hidden = list.length > 0;
      C.text(empty, "No instances are online. A prediction starts one; min instances keeps some warm.");
      C.text(updated, `Live · ${new Date().toLocaleTimeString()}`);
    }, 1500);
  }

  // ---- Charts of the deployment's time series, polled every 5 s.
  const round = (v, digits) => (v == null ? null : Number(v.toFixed(digits)));
  const seconds = (v) => (v >= 10 ? `${Math.round(v)} s` : `${Number(v.toPrecision(2))} s`);
  const count = (v) => String(Number(v.toPrecision(3)));

  function draw(figure, spec, data, longWindow) {
    const svg = qs("svg", figure);
    const times = data.points.map((p) => Date.parse(p.at) + data.step_seconds * 500);
    const timeFormat = (t) => {
      const d = new Date(t);
      const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      return longWindow ? `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}` : time;
    };
    const series = spec.series.map(([name, pick]) => ({ name, values: data.points.map(pick) }));
    Charts.line(svg, {
      times, series, since: Date.parse(data.since), until: Date.parse(data.until), format: spec.format, timeFormat,
    });
    Charts.legend(qs(".legend", figure), series.map((s) => s.name));
    const rows = data.points.map((p, k) => [timeFormat(times[k]), ...series.map((s) => s.values[k])]).reverse();
    Charts.table(qs("[data-chart-table]", figure), ["Time", ...series.map((s) => s.name)], rows.slice(0, 200));
    C.text(qs(".chart-summary", figure), spec.summary(series, data));
  }

  function latest(values) {
    for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
    return null;
  }

  function chartSpecs(windowLabel) {
    const peakOf = (values) => Math.max(0, ...values.filter((v) => v != null));
    const percentiles = (key) => ({
      format: seconds,
      series: [["p50", (p) => round(p[key].p50, 3)], ["p95", (p) => round(p[key].p95, 3)], ["p99", (p) => round(p[key].p99, 3)]],
      summary: (s) => {
        const worst = peakOf(s[2].values);
        return worst ? `Over the last ${windowLabel}: p50 now ${seconds(latest(s[0].values) || 0)}, worst p99 ${seconds(worst)}.` : `No finished predictions in the last ${windowLabel}.`;
      },
    });
    return {
      predictions: {
        format: count,
        series: [
          ["Created", (p) => p.predictions],
          ["Succeeded", (p) => p.succeeded],
          ["Failed", (p) => p.failed + p.canceled],
        ],
        summary: (s, data) => {
          const total = data.points.reduce((sum, p) => sum + p.predictions, 0);
          return `${total} prediction${total === 1 ? "" : "s"} in the last ${windowLabel}; peak ${count(peakOf(s[0].values))} per minute.`;
        },
        perMinute: true,
      },
      instances: {
        format: count,
        series: STATES.map((state) => [LABELS[state], (p) => (p.instances ? p.instances[state] || 0 : null)]),
        summary: (s) => {
          const now = s.map((x) => latest(x.values) || 0);
          const total = now.reduce((a, b) => a + b, 0);
          const parts = s.map((x, i) => (now[i] ? `${now[i]} ${x.name.toLowerCase()}` : null)).filter(Boolean);
          return `${total} instance${total === 1 ? "" : "s"} at the last sample${parts.length ? ` (${parts.join(", ")})` : ""}.`;
        },
      },
      queue_wait: percentiles("queue_wait"),
      predict_time: percentiles("predict_time"),
    };
  }

  function metrics(section, api) {
    const select = qs("[data-metrics-window]", section);
    let last = null;
    let asked = 0;

    function render() {
      if (!last) return;
      const label = select.options[select.selectedIndex].text;
      const specs = chartSpecs(label);
      const perMinute = 60 / last.step_seconds;
      for (const figure of section.querySelectorAll("[data-chart]")) {
        const spec = specs[figure.dataset.chart];
        if (spec.perMinute) {
          spec.series = spec.series.map(([name, pick]) => [name, (p) => round(pick(p) * perMinute, 2)]);
        }
        draw(figure, spec, last, ["24h", "7d"].includes(last.window));
      }
    }

    async function load() {
      const number = ++asked;
      const res = await C.api("GET", `${api}/metrics?window=${encodeURIComponent(select.value)}`);
      if (number !== asked) return;
      if (!res.ok) {
        for (const s of section.querySelectorAll(".chart-summary")) C.text(s, `Not updated: ${problem(res)}`);
        return;
      }
      last = res.data;
      render();
    }

    select.addEventListener("change", load);
    let resizing = null;
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(render, 150); });
    poll(load, 5000);
  }

  // ---- The autoscaler's recent decisions, polled every 5 s.
  function decisions(section, api) {
    const body = qs("[data-decisions-body]", section);
    const empty = qs("[data-decisions-empty]", section);
    poll(async () => {
      const res = await C.api("GET", `${api}/decisions?limit=25`);
      if (!res.ok) { C.text(empty, `Not updated: ${problem(res)}`); empty.hidden = false; return; }
      body.replaceChildren(...res.data.results.map((x) => {
        const tr = document.createElement("tr");
        const when = el("td");
        const time = el("time", new Date(x.decided_at).toLocaleTimeString());
        time.dateTime = x.decided_at;
        time.title = new Date(x.decided_at).toLocaleString();
        when.append(time);
        tr.append(when, el("td", `${x.current} → ${x.desired}`, "nowrap"), el("td", x.reason));
        return tr;
      }));
      empty.hidden = res.data.results.length > 0;
      C.text(empty, "No decisions yet: the autoscaler decides when work arrives or instances idle.");
    }, 5000);
  }

  // ---- A small run box for the deployment's endpoint.
  function runBox(form, api) {
    const input = form.elements.input;
    const status = qs("[data-run-status]", form);
    const output = qs("[data-run-output]", form);
    const button = qs("button[type=submit]", form);
    const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let body;
      try {
        body = JSON.parse(input.value.trim() || "{}");
      } catch (err) {
        input.setAttribute("aria-invalid", "true");
        C.text(status, `The input is not valid JSON: ${err.message}`);
        return;
      }
      input.removeAttribute("aria-invalid");
      button.disabled = true;
      C.text(status, "Starting…");
      try {
        let res = await C.api("POST", `${api}/predictions`, { input: body }, { Prefer: "wait=5" });
        while (res.ok && !FINISHED.includes(res.data.status)) {
          C.text(status, res.data.status);
          await sleep(1000);
          res = await C.api("GET", `/v1/predictions/${encodeURIComponent(res.data.id)}`);
        }
        if (!res.ok) { C.text(status, problem(res)); return; }
        const prediction = res.data;
        C.text(status, prediction.status);
        if (prediction.urls && /^https?:/.test(prediction.urls.web || "")) {
          const link = el("a", "Open the prediction");
          link.href = prediction.urls.web;
          status.append(" · ", link);
        }
        const shown = prediction.error != null ? prediction.error : prediction.output;
        output.textContent = typeof shown === "string" ? shown : JSON.stringify(shown, null, 2);
        output.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const panel = qs("[data-estimate-panel]");
    const form = qs("[data-estimate-form]");
    if (form && panel) estimate(form, panel);
    if (form) versions(form);
    const summary = qs("#form-errors");
    if (summary) summary.focus();
    const root = qs("[data-deployment]");
    if (!root) return;
    const api = root.dataset.api;
    instances(qs("[data-instances]", root), api);
    metrics(qs("[data-metrics]", root), api);
    decisions(qs("[data-decisions]", root), api);
    const run = qs("[data-run-form]", root);
    if (run) runBox(run, api);
  });
})();
