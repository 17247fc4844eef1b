// The trial page: per-epoch curves and confusion matrices from the page's JSON.
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const history = data.history || [];
  const keys = [];
  for (const h of history) {
    for (const [k, v] of Object.entries(h)) {
      if (k !== "epoch" && typeof v === "number" && !keys.includes(k)) keys.push(k);
    }
  }
  const epochs = document.getElementById("epochs");
  if (keys.length === 0) {
    epochs.textContent = "No per-epoch history recorded.";
    epochs.classList.add("muted");
  } else {
    const traces = keys.map((k) => ({
      name: k, mode: "lines+markers", type: "scatter",
      x: history.map((h, i) => (typeof h.epoch === "number" ? h.epoch : i + 1)),
      y: history.map((h) => (typeof h[k] === "number" ? h[k] : null)),
      yaxis: k.includes("loss") ? "y2" : "y",
    }));
    Plotly.newPlot(epochs, traces, {
      margin: { t: 20, r: 60 }, xaxis: { title: { text: "epoch" }, dtick: history.length <= 20 ? 1 : undefined },
      yaxis: { title: { text: "score" } },
      yaxis2: { title: { text: "loss" }, overlaying: "y", side: "right" },
      legend: { orientation: "h" },
    }, HH.PLOT_CONFIG);
  }
  Object.entries(data.matrices || {}).forEach(([key, z], i) => {
    const prefix = key.slice(0, -"confusion_matrix".length);
    const pc = (data.per_class || {})[prefix + "per_class"] || {};
    const n = z.length;
    const labels = Array.isArray(pc.labels) && pc.labels.length === n ? pc.labels.map(String) : [...Array(n).keys()].map(String);
    Plotly.newPlot("cm-" + i, [{
      type: "heatmap", z, x: labels, y: labels, colorscale: "Blues", reversescale: true,
      texttemplate: "%{z}", hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>",
    }], {
      margin: { t: 20 }, xaxis: { title: { text: "predicted" }, type: "category" },
      yaxis: { title: { text: "true" }, type: "category", autorange: "reversed" },
    }, HH.PLOT_CONFIG);
  });
})();
