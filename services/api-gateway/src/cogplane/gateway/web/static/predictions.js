// Cogplane web app: outputs rendered by type, and predictions followed live (SSE and polling).
// User content only ever goes into the page as text (textContent) or as checked URLs.
"use strict";

const CogplanePredictions = (() => {
  const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
  const IMAGE = /\.(png|jpe?g|gif|webp|avif|bmp|svg)$/i;
  const AUDIO = /\.(mp3|wav|ogg|oga|flac|m4a|aac|opus)$/i;
  const VIDEO = /\.(mp4|webm|mov|m4v|ogv)$/i;
  const EXTENSIONS = {
    "text/plain": "txt", "application/json": "json", "image/png": "png", "image/jpeg": "jpg",
    "image/webp": "webp", "image/gif": "gif", "audio/wav": "wav", "audio/mpeg": "mp3",
    "video/mp4": "mp4", "application/zip": "zip", "application/pdf": "pdf",
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A JSON data block of the page (<script type="application/json" id=...>), or null.
  function jsonBlock(id) {
    const node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (_) { return null; }
  }

  // Only URLs that cannot run script: http(s) and data: (data: is shown, never navigated to).
  function isUrl(value) {
    return typeof value === "string" && /^(https?:\/\/|data:)/i.test(value);
  }

  function mimeOf(url) {
    const found = /^data:([^;,]*)/i.exec(url);
    return found ? found[1].toLowerCase() : "";
  }

  function fileName(url, index) {
    if (url.startsWith("data:")) {
      const mime = mimeOf(url);
      const subtype = (mime.split("/")[1] || "").replace(/^x-/, "");
      const ext = EXTENSIONS[mime] || (/^[a-z0-9]{1,5}$/.test(subtype) ? subtype : "bin");
      return `output${index ? "-" + index : ""}.${ext}`;
    }
    try {
      const path = new URL(url).pathname;
      return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1)) || "output";
    } catch (_) {
      return "output";
    }
  }

  function mediaKind(url) {
    const mime = mimeOf(url);
    if (mime) {
      const top = mime.split("/")[0];
      return ["image", "audio", "video"].includes(top) ? top : "file";
    }
    let path = url;
    try { path = new URL(url).pathname; } catch (_) { /* keep the text */ }
    if (IMAGE.test(path)) return "image";
    if (AUDIO.test(path)) return "audio";
    if (VIDEO.test(path)) return "video";
    return "file";
  }

  function download(url, index) {
    const link = el("a", "download", `Download ${fileName(url, index)}`);
    link.href = url;
    link.setAttribute("download", fileName(url, index));
    link.rel = "noopener noreferrer";
    return link;
  }

  function renderUrl(url, index) {
    const box = el("figure", "output-file");
    const kind = mediaKind(url);
    if (kind === "image") {
      const img = el("img");
      img.src = url;
      img.alt = `Output image${index ? " " + (index + 1) : ""}`;
      box.appendChild(img);
    } else if (kind === "audio" || kind === "video") {
      const media = el(kind);
      media.controls = true;
      media.preload = "metadata";
      media.src = url;
      media.setAttribute("aria-label", `Output ${kind}`);
      box.appendChild(media);
    }
    const caption = el("figcaption");
    caption.appendChild(download(url, index));
    box.appendChild(caption);
    return box;
  }

  function isFileSchema(schema) {
    return !!schema && schema.type === "string" && schema.format === "uri";
  }

  // One value of an output, rendered by its schema (or, without one, by what it looks like).
  function renderValue(value, schema, index) {
    schema = schema || {};
    if (value === null || value === undefined) return el("p", "muted", "No output");
    if (Array.isArray(value)) {
      if (schema["x-cog-array-display"] === "concatenate" && value.every((x) => typeof x === "string")) {
        return el("pre", "output-text", value.join(""));
      }
      const list = el("div", "output-list");
      value.forEach((item, i) => list.appendChild(renderValue(item, schema.items, i)));
      return list;
    }
    if (typeof value === "string") {
      const looksLikeFile = isFileSchema(schema) || (!schema.type && isUrl(value));
      return looksLikeFile && isUrl(value) ? renderUrl(value, index || 0) : el("pre", "output-text", value);
    }
    if (typeof value === "object") {
      const props = schema.properties;
      if (!props) return el("pre", "output-json", JSON.stringify(value, null, 2));
      const list = el("dl", "output-object");
      Object.keys(value).forEach((key) => {
        list.appendChild(el("dt", null, key));
        const dd = el("dd");
        dd.appendChild(renderValue(value[key], props[key], 0));
        list.appendChild(dd);
      });
      return list;
    }
    return el("pre", "output-json", JSON.stringify(value));
  }

  // Show ``output`` in ``box``; a growing list only gets its new items (no flicker, no reload).
  function renderOutput(box, output, schema, waiting) {
    const key = JSON.stringify(output === undefined ? null : output);
    const state = waiting ? "waiting" : "done";
    if (box.dataset.rendered === key && box.dataset.state === state) return;
    const previous = box.dataset.rendered ? JSON.parse(box.dataset.rendered) : null;
    box.dataset.rendered = key;
    box.dataset.state = state;
    schema = schema || {};
    const concatenate = schema["x-cog-array-display"] === "concatenate";
    const list = box.querySelector(":scope > .output-list");
    if (Array.isArray(output) && Array.isArray(previous) && !concatenate && list &&
        previous.length <= output.length && previous.every((x, i) => JSON.stringify(x) === JSON.stringify(output[i]))) {
      for (let i = previous.length; i < output.length; i++) list.appendChild(renderValue(output[i], schema.items, i));
      return;
    }
    const text = box.querySelector(":scope > .output-text");
    if (concatenate && Array.isArray(output) && text) {
      text.textContent = output.join("");
      return;
    }
    box.replaceChildren();
    if ((output === null || output === undefined || (Array.isArray(output) && !output.length)) && waiting) {
      box.appendChild(el("p", "muted", "Waiting for output…"));
      if (Array.isArray(output)) box.dataset.rendered = "";
      return;
    }
    box.appendChild(renderValue(output, schema, 0));
  }

  function seconds(value) {
    if (typeof value !== "number") return "";
    return `${value < 1 ? value.toFixed(3) : value.toFixed(2)} s`;
  }

  function renderStatus(line, prediction) {
    line.replaceChildren();
    const badge = el("span", `badge status-${prediction.status}`, prediction.status);
    line.appendChild(badge);
    if (prediction.error) line.appendChild(el("span", "error", " " + prediction.error));
    else if (!TERMINAL.has(prediction.status)) line.appendChild(el("span", "muted", prediction.status === "starting" ? " waiting for an instance…" : " running…"));
  }

  function renderLogs(pre, logs) {
    const text = logs || "";
    if (pre.textContent === text) return;
    const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
    pre.textContent = text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function path(url) {
    const parsed = new URL(url, location.href);
    return parsed.pathname + parsed.search;
  }

  function parseChunk(data, itemType) {
    if (["integer", "number", "boolean", "object", "array"].includes(itemType)) {
      try { return JSON.parse(data); } catch (_) { return data; }
    }
    return data;
  }

  // Follow a prediction until it ends: its stream (outputs and logs as they come) where it has
  // one, and GET for its status, in any case. ``onUpdate`` gets the newest view each time.
  function follow(prediction, schema, onUpdate) {
    let current = prediction;
    let stopped = false;
    let source = null;
    let wake = null;
    const streamed = { output: [], logs: "", any: false };
    const itemType = schema && schema.items ? schema.items.type : undefined;

    function view() {
      if (TERMINAL.has(current.status) || !streamed.any) return current;
      const merged = Object.assign({}, current);
      const have = Array.isArray(current.output) ? current.output.length : 0;
      if (streamed.output.length > have) merged.output = streamed.output.slice();
      if (streamed.logs.length > (current.logs || "").length) merged.logs = streamed.logs;
      return merged;
    }
    function closeStream() { if (source) { source.close(); source = null; } }
    function stop() { stopped = true; closeStream(); if (wake) wake(); }

    if (current.urls && current.urls.stream && window.EventSource) {
      source = new EventSource(path(current.urls.stream));
      source.addEventListener("output", (event) => {
        streamed.any = true;
        streamed.output.push(parseChunk(event.data, itemType));
        onUpdate(view());
      });
      source.addEventListener("logs", (event) => {
        streamed.any = true;
        streamed.logs += event.data;
        onUpdate(view());
      });
      const ended = () => { closeStream(); if (wake) wake(); };
      source.addEventListener("done", ended);
      source.addEventListener("error", (event) => { if (event.data !== undefined) ended(); });
    }

    async function poll() {
      const delays = [250, 400, 600, 800, 1000];
      let round = 0;
      while (!stopped && !TERMINAL.has(current.status)) {
        await new Promise((resolve) => { wake = resolve; setTimeout(resolve, delays[Math.min(round, delays.length - 1)]); });
        wake = null;
        round += 1;
        if (stopped) return;
        const res = await Cogplane.api("GET", path(current.urls.get)).catch(() => null);
        if (res && res.ok && res.data) {
          current = res.data;
          onUpdate(view());
        } else if (res && (res.status === 404 || res.status === 401)) {
          stop();
        }
      }
      closeStream();
    }
    poll();

    async function cancel() {
      const res = await Cogplane.api("POST", path(current.urls.cancel));
      if (res.ok && res.data) {
        current = res.data;
        onUpdate(view());
      }
      if (wake) wake();
      return res;
    }
    return { stop, cancel, get current() { return current; } };
  }

  function renderMetrics(node, prediction) {
    if (!node) return;
    const parts = [];
    const metrics = prediction.metrics || {};
    if (typeof metrics.predict_time === "number") parts.push(`Ran for ${seconds(metrics.predict_time)}`);
    if (typeof metrics.total_time === "number") parts.push(`${seconds(metrics.total_time)} in all`);
    if (metrics.cost !== undefined && metrics.cost !== null) parts.push(`cost $${metrics.cost}`);
    node.textContent = parts.join(" · ");
  }

  // The prediction page (/p/{id}): render the output, follow it while it runs.
  function initDetail() {
    const data = jsonBlock("prediction-data");
    const box = document.getElementById("output");
    if (!data || !box) return;
    const schema = jsonBlock("output-schema") || {};
    const status = document.getElementById("run-status");
    const logs = document.getElementById("logs");
    const cancelButton = document.getElementById("cancel-button");
    const running = !TERMINAL.has(data.status);
    if (!box.children.length) renderOutput(box, data.output, schema, running);
    if (!running) return;
    const update = (prediction) => {
      const done = TERMINAL.has(prediction.status);
      renderStatus(status, prediction);
      renderOutput(box, prediction.output, schema, !done);
      renderLogs(logs, prediction.logs);
      const cells = { "predict-time": "predict_time", "total-time": "total_time" };
      Object.entries(cells).forEach(([id, key]) => {
        const cell = document.getElementById(id);
        const value = (prediction.metrics || {})[key];
        if (cell && typeof value === "number") cell.textContent = `${value.toFixed(3)} s`;
      });
      if (done && cancelButton) { cancelButton.disabled = true; cancelButton.hidden = true; }
    };
    const follower = follow(data, schema, update);
    if (cancelButton) {
      cancelButton.addEventListener("click", async () => {
        cancelButton.disabled = true;
        const res = await follower.cancel();
        if (!res.ok) cancelButton.disabled = false;
      });
    }
  }

  document.addEventListener("DOMContentLoaded", initDetail);
  return { TERMINAL, jsonBlock, follow, renderOutput, renderStatus, renderLogs, renderMetrics, path };
})();
window.CogplanePredictions = CogplanePredictions;
