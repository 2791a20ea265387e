// Cogplane charts: small hand-written SVG charts (no third-party code).
// Every label is set with textContent; colours come from classes in deployments.css.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PAD = { top: 12, right: 14, bottom: 26, left: 52 };

  function node(tag, attrs, text) {
    const el = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
    if (text != null) el.textContent = String(text);
    return el;
  }

  // A round number at or above value, for the top of the y axis.
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const exp = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * exp + 1e-12) return m * exp;
    return 10 * exp;
  }

  // Fit the drawing to the element's size (so text keeps its size on any screen); clear it.
  function frame(svg, height) {
    const width = Math.max(200, Math.round(svg.getBoundingClientRect().width || 600));
    const tall = height || Math.max(120, Math.round(svg.getBoundingClientRect().height || 180));
    svg.setAttribute("viewBox", `0 0 ${width} ${tall}`);
    svg.replaceChildren();
    return { x0: PAD.left, x1: width - PAD.right, y0: PAD.top, y1: tall - PAD.bottom, width, height: tall };
  }

  function yAxis(svg, box, max, format) {
    const axis = node("g", { class: "axis" });
    for (const f of [0, 0.5, 1]) {
      const y = box.y1 - f * (box.y1 - box.y0);
      axis.append(node("line", { x1: box.x0, x2: box.x1, y1: y, y2: y, class: "grid" }));
      axis.append(node("text", { x: box.x0 - 6, y: y + 4, "text-anchor": "end" }, format(max * f)));
    }
    svg.append(axis);
  }

  function xLabels(svg, box, labels) {
    const axis = node("g", { class: "axis" });
    labels.forEach(([x, text], i) => {
      const anchor = i === 0 ? "start" : i === labels.length - 1 ? "end" : "middle";
      axis.append(node("text", { x, y: box.y1 + 17, "text-anchor": anchor }, text));
    });
    svg.append(axis);
  }

  function peak(series) {
    let max = 0;
    for (const s of series) for (const v of s.values) if (v != null && v > max) max = v;
    return max;
  }

  // Lines over time. times: ms timestamps; series: [{name, values: [number|null]}] (null: no data).
  function line(svg, { times, series, since, until, format, timeFormat }) {
    const box = frame(svg);
    const max = niceMax(peak(series));
    const span = Math.max(1, until - since);
    const x = (t) => box.x0 + ((t - since) / span) * (box.x1 - box.x0);
    const y = (v) => box.y1 - (v / max) * (box.y1 - box.y0);
    yAxis(svg, box, max, format);
    const mid = since + span / 2;
    xLabels(svg, box, [[box.x0, timeFormat(since)], [x(mid), timeFormat(mid)], [box.x1, timeFormat(until)]]);
    series.forEach((s, i) => {
      let d = "";
      let pen = false;
      const dots = node("g", { class: `dots s${i}` });
      s.values.forEach((v, k) => {
        if (v == null) { pen = false; return; }
        const px = x(times[k]).toFixed(1);
        const py = y(v).toFixed(1);
        d += `${pen ? "L" : "M"}${px} ${py} `;
        pen = true;
        if (s.values.length <= 120) dots.append(node("circle", { cx: px, cy: py, r: 2.5 }));
      });
      svg.append(node("path", { d: d.trim() || "M0 0", class: `series s${i}` }), dots);
    });
    const counted = series.length ? series[0].values.filter((v) => v != null).length : 0;
    svg.dataset.points = String(counted);
  }

  // Vertical bars, one per label (for example one per day).
  function bars(svg, { labels, values, format, labelFormat }) {
    const box = frame(svg);
    const max = niceMax(Math.max(0, ...values));
    yAxis(svg, box, max, format);
    const slot = (box.x1 - box.x0) / Math.max(1, values.length);
    const group = node("g", { class: "bars s0" });
    values.forEach((v, i) => {
      const h = (v / max) * (box.y1 - box.y0);
      const rect = node("rect", {
        x: (box.x0 + i * slot + slot * 0.15).toFixed(1), y: (box.y1 - h).toFixed(1),
        width: Math.max(1, slot * 0.7).toFixed(1), height: h.toFixed(1),
      });
      rect.append(node("title", {}, `${labelFormat(labels[i])}: ${format(v)}`));
      group.append(rect);
    });
    svg.append(group);
    if (labels.length) {
      const last = labels.length - 1;
      const at = (i) => box.x0 + i * slot + slot / 2;
      const ticks = [[box.x0, labelFormat(labels[0])]];
      if (last > 1) ticks.push([at(Math.floor(last / 2)), labelFormat(labels[Math.floor(last / 2)])]);
      if (last > 0) ticks.push([box.x1, labelFormat(labels[last])]);
      xLabels(svg, box, ticks);
    }
    svg.dataset.points = String(values.filter((v) => v > 0).length);
  }

  // Horizontal bars with their labels, one row each (the svg's height fits the rows).
  function hbars(svg, { labels, values, format }) {
    const row = 28;
    const box = frame(svg, Math.max(1, labels.length) * row + 8);
    svg.setAttribute("height", String(box.height));
    const max = Math.max(...values, 0) || 1;
    const labelWidth = Math.min(220, box.width * 0.42);
    const valueWidth = 70;
    const start = 4 + labelWidth;
    const room = Math.max(10, box.width - start - valueWidth);
    labels.forEach((label, i) => {
      const top = 4 + i * row;
      const shown = label.length > 32 ? `${label.slice(0, 31)}…` : label;
      const text = node("text", { x: 4, y: top + 18, class: "bar-label" }, shown);
      text.append(node("title", {}, label));
      const w = Math.max(1, (values[i] / max) * room);
      const rect = node("rect", { x: start, y: top + 5, width: w.toFixed(1), height: row - 10, class: `s${i % 6}` });
      svg.append(text, rect, node("text", { x: start + w + 6, y: top + 18, class: "bar-value" }, format(values[i])));
    });
    svg.dataset.points = String(values.length);
  }

  // The legend of a chart's series (a list of names with their colour swatch).
  function legend(list, names) {
    list.replaceChildren(...names.map((name, i) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = `swatch s${i}`;
      item.append(swatch, document.createTextNode(name));
      return item;
    }));
  }

  // A data table: the chart's text alternative.
  function table(container, headers, rows) {
    const t = document.createElement("table");
    const head = t.createTHead().insertRow();
    for (const h of headers) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      head.append(th);
    }
    const body = t.createTBody();
    for (const cells of rows) {
      const tr = body.insertRow();
      for (const c of cells) tr.insertCell().textContent = c == null ? "—" : String(c);
    }
    container.replaceChildren(t);
  }

  return { line, bars, hbars, legend, table, niceMax };
})();
window.Charts = Charts;
