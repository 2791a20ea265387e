// Usage page: charts drawn from the report the page was rendered with (text only, no HTML).
"use strict";

(() => {
  const dollars = (v) => (v >= 100 ? `$${Math.round(v)}` : `$${v.toFixed(v && v < 0.1 ? 3 : 2)}`);
  const secs = (v) => {
    if (v < 120) return `${Math.round(v)} s`;
    if (v < 7200) return `${Number((v / 60).toFixed(v < 600 ? 1 : 0))} min`;
    return `${Number((v / 3600).toFixed(1))} h`;
  };
  const shortDay = (day) => day.slice(5);

  function draw(data) {
    for (const figure of document.querySelectorAll("[data-usage-chart]")) {
      const rows = data[figure.dataset.usageChart] || [];
      const measure = figure.dataset.measure;
      const format = measure === "cost" ? dollars : secs;
      const values = rows.map((r) => Number(r[measure]));
      const labels = rows.map((r) => r.label);
      const svg = figure.querySelector("svg");
      const summary = figure.querySelector(".chart-summary");
      if (figure.dataset.usageChart === "days") {
        Charts.bars(svg, { labels, values, format, labelFormat: shortDay });
        const total = values.reduce((a, b) => a + b, 0);
        const busiest = values.indexOf(Math.max(...values));
        summary.textContent = total
          ? `${format(total)} over ${rows.length} days; the most on ${labels[busiest]} (${format(values[busiest])}).`
          : `Nothing over these ${rows.length} days.`;
      } else {
        Charts.hbars(svg, { labels, values, format: dollars });
        summary.textContent = rows.length
          ? `The most: ${labels[0]} (${dollars(values[0])}) of ${rows.length}.`
          : "Nothing in this period.";
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const filter = document.querySelector("[data-usage-filter]");
    if (filter) {
      for (const select of filter.querySelectorAll("select")) {
        select.addEventListener("change", () => filter.requestSubmit());
      }
    }
    const source = document.getElementById("usage-data");
    if (!source) return;
    const data = JSON.parse(source.textContent);
    draw(data);
    let resizing = null;
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(() => draw(data), 150); });
  });
})();
