// The compare page: each trial's objective per epoch, overlaid; a filter for the differing rows.
"use strict";
(() => {
  const curves = JSON.parse(document.getElementById("page-data").textContent);
  const dashes = ["solid", "dash", "dot", "dashdot", "longdash"];
  const traces = curves.map((c, i) => ({
    name: c.label + " · " + c.metric, type: "scatter", mode: "lines+markers", line: { dash: dashes[i % dashes.length] },
    x: c.history.map((h, k) => (typeof h.epoch === "number" ? h.epoch : k + 1)),
    y: c.history.map((h) => (typeof h[c.metric] === "number" ? h[c.metric] : null)),
  }));
  const div = document.getElementById("compare-curves");
  if (traces.every((t) => t.y.every((v) => v === null))) {
    div.textContent = "None of these trials recorded per-epoch values of its objective."; div.classList.add("muted");
  } else {
    Plotly.newPlot(div, traces, { margin: { t: 20 }, xaxis: { title: { text: "epoch" }, dtick: Math.max(...traces.map((t) => t.x.length)) <= 20 ? 1 : undefined }, legend: { orientation: "h" } }, HH.PLOT_CONFIG);
  }
  document.getElementById("only-diff").addEventListener("change", (e) => {
    for (const tr of document.querySelectorAll("#config-diff tr.same")) tr.hidden = e.target.checked;
  });
})();
