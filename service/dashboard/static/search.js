// The search page: plots and the trial table, kept up to date by polling /dashboard-api/.../rows.
"use strict";
(() => {
  performance.mark("hh:script"); // plotly.js and the page scripts are parsed and run
  const initial = JSON.parse(document.getElementById("page-data").textContent);
  const searchId = initial.search.id;
  const api = "/dashboard-api/searches/" + encodeURIComponent(searchId);
  const st = { epoch: null, revision: 0, rows: new Map(), params: [], search: initial.search, timer: null,
    curves: new Map(), sample: null, sampleAt: 0, bestShown: initial.best_shown };
  const POLL_MS = 2000;
  const SAMPLE_ABOVE = initial.plot_cap; // trials with a value: above this the parameter plots draw a sample
  const SAMPLE_EVERY_MS = 10000; // ... fetched again at most this often while trials finish
  const CURVES_MAX_FINISHED = 300;
  const CURVES_PER_REQUEST = 200;
  const HISTORY_POINTS = 1500; // trials with a value: above this the history draws their density
  const STRIP_CELLS = 800; // trials without a value: at most one marker per state and 1/800 of the axis
  const FINAL = ["completed", "cancelled", "failed"];
  let logScale = false;

  // ---------------------------------------------------------------- optimisation history
  // At most one trial per STRIP_CELLS-th of the trial axis (the first in each).
  function thin(rs) {
    if (rs.length <= STRIP_CELLS) return rs;
    const x0 = rs[0].n, span = rs[rs.length - 1].n - x0 || 1, seen = new Set();
    return rs.filter((r) => {
      const cell = Math.floor(((r.n - x0) / span) * STRIP_CELLS);
      if (seen.has(cell)) return false;
      seen.add(cell); return true;
    });
  }
  // Trials per cell of a DENSITY_CELLS grid over (trial number, value), as a heatmap (empty cells
  // transparent): binned here, a few ms for 10,000 trials, and drawn by plotly as one image.
  const DENSITY_CELLS = [160, 50];
  function density(xs, ys, metric) {
    const [nx, ny] = DENSITY_CELLS;
    let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const z = Array.from({ length: ny }, () => new Array(nx).fill(null));
    xs.forEach((x, i) => {
      const cx = Math.min(nx - 1, Math.floor(((x - x0) / (x1 - x0)) * nx));
      const cy = Math.min(ny - 1, Math.floor(((ys[i] - y0) / (y1 - y0)) * ny));
      z[cy][cx] = (z[cy][cx] || 0) + 1;
    });
    const centres = (lo, hi, k) => [...Array(k).keys()].map((i) => lo + ((i + 0.5) * (hi - lo)) / k);
    return {
      type: "heatmap", name: "trials", x: centres(x0, x1, nx), y: centres(y0, y1, ny), z, zmin: 0, hoverongaps: false,
      colorscale: [[0, "#deebf7"], [0.5, "#6baed6"], [1, "#08306b"]],
      colorbar: { title: { text: "trials" }, thickness: 12, len: 0.6, y: 0.62 },
      hovertemplate: "near trial #%{x:.0f}, " + metric + " %{y:.4g}: %{z} trials<extra></extra>",
    };
  }
  function drawHistory() {
    const rows = [...st.rows.values()].sort((a, b) => a.n - b.n);
    const mode = st.search.objective_mode, metric = st.search.objective_metric;
    // the best so far: a step line through the trials that improved it (and on to the last trial)
    const best = [], improved = []; let cur = null;
    for (const r of rows) {
      if (r.s === "done" && r.v !== null && (cur === null || (mode === "min" ? r.v < cur : r.v > cur))) {
        cur = r.v; best.push([r.n, cur]); improved.push(r);
      }
    }
    if (best.length && rows.length) best.push([rows[rows.length - 1].n, cur]);
    const valued = rows.filter((r) => (r.s === "done" || r.s === "pruned") && r.v !== null);
    const dense = valued.length > HISTORY_POINTS;
    const traces = [];
    if (dense) {
      // Thousands of markers take seconds to draw in SVG and hide each other: the trials' density
      // (trials per cell) instead, with the trials that set a new best as markers on top.
      const shown = logScale ? valued.filter((r) => r.v > 0) : valued;
      traces.push(density(shown.map((r) => r.n), shown.map((r) => (logScale ? Math.log10(r.v) : r.v)), metric));
      traces.push({
        name: "new best", type: "scatter", mode: "markers", x: improved.map((r) => r.n),
        y: improved.map((r) => (logScale ? Math.log10(r.v) : r.v)), customdata: improved.map((r) => r.id),
        marker: { color: "#111", symbol: "star", size: 9 }, hovertemplate: "trial #%{x}: new best<extra></extra>",
      });
    } else {
      for (const state of ["done", "pruned"]) {
        const rs = valued.filter((r) => r.s === state);
        traces.push({
          name: state, type: "scatter", mode: "markers", x: rs.map((r) => r.n), y: rs.map((r) => r.v),
          customdata: rs.map((r) => r.id), marker: { color: HH.STATES[state].color, symbol: HH.STATES[state].symbol, size: 7 },
          hovertemplate: "trial #%{x} (" + state + "): %{y}<extra></extra>",
        });
      }
    }
    traces.push({
      name: "best so far", type: "scatter", mode: "lines", line: { shape: "hv", color: "#111", width: 2 },
      x: best.map((p) => p[0]), y: best.map((p) => (dense && logScale ? Math.log10(p[1]) : p[1])), hoverinfo: "skip",
    });
    // Trials without a value (failed, cancelled, running, queued): a strip under the plot.
    let strip = false;
    for (const state of ["failed", "cancelled", "pruned", "running", "queued"]) {
      const rs = thin(rows.filter((r) => r.s === state && r.v === null));
      if (!rs.length) continue;
      strip = true;
      traces.push({
        name: state, type: "scatter", mode: "markers", x: rs.map((r) => r.n), y: rs.map(() => state), yaxis: "y2",
        customdata: rs.map((r) => r.id), marker: { color: HH.STATES[state].color, symbol: HH.STATES[state].symbol, size: 8 },
        hovertemplate: "trial #%{x}: " + state + "<extra></extra>",
      });
    }
    // With a strip, the trial axis sits under it (its title below both), the strip under the plot.
    // A density on a log scale is binned over log10 of the values (the axis says so).
    const layout = {
      margin: { t: 20, l: 80, r: 20, b: 50 }, legend: { orientation: "h", y: -0.18 },
      xaxis: { title: { text: "trial", standoff: 6 }, zeroline: false, dtick: rows.length <= 20 ? 1 : undefined,
        anchor: strip ? "y2" : "y" },
      yaxis: { title: { text: dense && logScale ? "log10 " + metric : metric }, domain: strip ? [0.26, 1] : [0, 1],
        type: logScale && !dense ? "log" : "linear" },
    };
    if (strip) layout.yaxis2 = { domain: [0, 0.16], type: "category", fixedrange: true, automargin: true };
    const div = document.getElementById("history");
    Plotly.react(div, traces, layout, HH.PLOT_CONFIG);
    document.getElementById("history-note").textContent = dense
      ? valued.length.toLocaleString("en") + " trials with a value, drawn as their density (trials per cell); " +
        "the stars are the trials that set a new best (click one to open it). Every trial is in the table below."
      : "";
    if (!div.dataset.wired) {
      div.dataset.wired = "1";
      div.on("plotly_click", (ev) => { const id = ev.points[0].customdata; if (id) location.href = "/trials/" + id; });
    }
  }

  // ---------------------------------------------------------------- parallel coordinates
  function ticks(lo, hi, log, integer) {
    const vals = [], text = [];
    for (let i = 0; i <= 4; i++) {
      let v = lo + ((hi - lo) * i) / 4;
      if (integer && !log) v = Math.round(v);
      if (vals.includes(v)) continue;
      const shown = log ? Math.pow(10, v) : v;
      vals.push(v); text.push(integer ? String(Math.round(shown)) : Number(shown.toPrecision(3)).toString());
    }
    return [vals, text];
  }
  // The rows the parameter plots draw, with their parameter values, from the server: every trial with
  // a value, or above SAMPLE_ABOVE of them the best ones and a random draw of the others, said so
  // under each plot. Fetched again when trials got a value (above SAMPLE_ABOVE at most every
  // SAMPLE_EVERY_MS).
  async function plotRows() {
    const scored = [...st.rows.values()].filter((r) => r.v !== null).length;
    const due = !st.sample || (st.sample.scored !== scored &&
      (scored <= SAMPLE_ABOVE || Date.now() - st.sampleAt >= SAMPLE_EVERY_MS));
    if (due) { st.sample = await HH.getJSON(api + "/sample"); st.sampleAt = Date.now(); }
    const rows = st.sample.rows;
    let text = "";
    if (st.sample.sampled) {
      text = "A sample drawn on the server: the best " + st.sample.best + " and a random " + (rows.length - st.sample.best) +
        " of the other " + (st.sample.scored - st.sample.best) + " trials with a value (" + rows.length + " of " + st.sample.scored + ").";
    }
    for (const id of ["parcoords-note", "slices-note"]) document.getElementById(id).textContent = text;
    return rows;
  }
  function drawParcoords(rows) {
    const div = document.getElementById("parcoords");
    if (!rows.length || !st.params.length) {
      div.textContent = rows.length ? "This search has no parameters." : "No trial with a value yet.";
      div.classList.add("muted"); return;
    }
    div.classList.remove("muted");
    if (!div.classList.contains("js-plotly-plot")) div.textContent = "";
    const dims = [];
    st.params.forEach((p, i) => {
      const raw = rows.map((r) => r.p[i]);
      const active = raw.filter((v) => v !== null);
      if (!active.length) return;
      const hasInactive = active.length < raw.length;
      if (p.options.length) {
        const k = p.options.length;
        const tickvals = [...Array(k).keys()], ticktext = p.options.slice();
        if (hasInactive) { tickvals.push(k); ticktext.push("(inactive)"); }
        dims.push({ label: p.label, values: raw.map((v) => (v === null ? k : v)), tickvals, ticktext,
          range: [0, Math.max(hasInactive ? k : k - 1, 1)] });
        return;
      }
      const tr = (v) => (p.log && v > 0 ? Math.log10(v) : v);
      const vals = active.map(tr);
      let lo = Math.min(...vals), hi = Math.max(...vals);
      if (hi === lo) { lo -= 0.5; hi += 0.5; }
      const [tickvals, ticktext] = ticks(lo, hi, p.log, p.integer);
      const gap = lo - (hi - lo) * 0.15;
      if (hasInactive) { tickvals.unshift(gap); ticktext.unshift("(inactive)"); }
      dims.push({ label: p.label + (p.log ? " (log)" : ""), values: raw.map((v) => (v === null ? gap : tr(v))),
        tickvals, ticktext, range: [hasInactive ? gap : lo, hi] });
    });
    const values = rows.map((r) => r.v);
    let vlo = Math.min(...values), vhi = Math.max(...values);
    if (vhi === vlo) { vlo -= 0.5; vhi += 0.5; }
    const [vt, vtt] = ticks(vlo, vhi, false, false);
    dims.push({ label: st.search.objective_metric, values, tickvals: vt, ticktext: vtt, range: [vlo, vhi] });
    // Drawn in SVG (lines across one axis per dimension), not as a WebGL "parcoords" trace: WebGL
    // rendered in software (headless, VMs, remote desktops) takes seconds and blocks the page.
    const norm = (d, v) => (v - d.range[0]) / (d.range[1] - d.range[0]);
    const BINS = 8, sign = st.search.objective_mode === "min" ? -1 : 1;
    const colour = (t) => { // Viridis, t in [0, 1]
      const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
      const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1), i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
      const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
      return "rgb(" + c.join(",") + ")";
    };
    const traces = [];
    for (let b = 0; b < BINS; b++) { // worst bin first, so the best lines are drawn on top
      const x = [], y = [], text = [];
      rows.forEach((r, j) => {
        const t = (values[j] - vlo) / (vhi - vlo), good = sign > 0 ? t : 1 - t;
        if (Math.min(Math.floor(good * BINS), BINS - 1) !== b) return;
        dims.forEach((d, k) => { x.push(k); y.push(norm(d, d.values[j])); text.push("trial #" + r.n + ": " + HH.fmt(r.v)); });
        x.push(null); y.push(null); text.push("");
      });
      if (!x.length) continue;
      traces.push({ type: "scatter", mode: "lines", x, y, text, showlegend: false, hovertemplate: "%{text}<extra></extra>",
        line: { width: 1, color: colour(sign > 0 ? (b + 0.5) / BINS : 1 - (b + 0.5) / BINS) }, opacity: 0.55 });
    }
    traces.push({ type: "scatter", mode: "markers", x: [0], y: [-1], hoverinfo: "skip", showlegend: false,
      marker: { color: [vlo, vhi], cmin: vlo, cmax: vhi, colorscale: "Viridis", showscale: true, size: 0.1,
        colorbar: { title: { text: st.search.objective_metric }, thickness: 14 } } });
    const annotations = [], shapes = [];
    dims.forEach((d, k) => {
      shapes.push({ type: "line", x0: k, x1: k, y0: 0, y1: 1, line: { color: "#444", width: 1 } });
      // many axes: the label's last two path parts, staggered on two rows; the full path on hover
      const short = dims.length > 6 ? d.label.split(".").slice(-2).join(".") : d.label;
      annotations.push({ x: k, y: dims.length > 6 && k % 2 ? 1.1 : 1.03, text: short, hovertext: d.label,
        showarrow: false, yanchor: "bottom", font: { size: 11 } });
      d.tickvals.forEach((tv, i) => annotations.push({ x: k, y: norm(d, tv), text: d.ticktext[i], showarrow: false,
        xanchor: "right", xshift: -4, font: { size: 10, color: "#333" }, bgcolor: "rgba(255,255,255,0.7)" }));
    });
    Plotly.react(div, traces, {
      margin: { t: 30, l: 70, r: 20, b: 20 }, annotations, shapes, hovermode: "closest",
      xaxis: { visible: false, range: [-0.5, dims.length - 0.6], fixedrange: true },
      yaxis: { visible: false, range: [-0.04, 1.17], fixedrange: true },
    }, HH.PLOT_CONFIG);
  }

  // ---------------------------------------------------------------- importance and slices
  let importanceKey = null, importanceAt = 0, importanceRetry = null;
  const IMPORTANCE_EVERY_MS = 15000; // the forest is refitted on the server: not on every trial
  const IMPORTANCE_RETRY_MS = 1500; // while the server computes it
  async function drawImportance(force) {
    const done = [...st.rows.values()].filter((r) => r.s === "done" && r.v !== null).length;
    if (!force && (done === importanceKey || (importanceKey !== null && Date.now() - importanceAt < IMPORTANCE_EVERY_MS))) return;
    importanceKey = done; importanceAt = Date.now();
    const div = document.getElementById("importance");
    const data = await HH.getJSON(api + "/importance");
    if (data.pending && !importanceRetry) { // computed in the background: ask again shortly
      importanceRetry = setTimeout(() => { importanceRetry = null; drawImportance(true).catch((e) => console.warn(e.message)); }, IMPORTANCE_RETRY_MS);
    }
    if (data.params === null) {
      document.getElementById("importance-note").textContent = "";
      div.textContent = "Computing the importance of each parameter…"; div.classList.add("muted"); return;
    }
    const known = data.params.filter((p) => p.importance !== null).reverse();
    const unknown = data.params.filter((p) => p.importance === null);
    document.getElementById("importance-note").textContent = "Random-forest importance over the done trials where each parameter is active" +
      (unknown.length ? "; too few trials (or no variation) to judge: " + unknown.map((p) => p.label + " (" + p.trials + ")").join(", ") : "") +
      (data.pending ? "; being updated for the latest trials" : "") + ".";
    if (!known.length) {
      div.textContent = "Needs at least 5 done trials with different values."; div.classList.add("muted"); return;
    }
    div.classList.remove("muted");
    if (!div.classList.contains("js-plotly-plot")) div.textContent = "";
    Plotly.react(div, [{
      type: "bar", orientation: "h", x: known.map((p) => p.importance), y: known.map((p) => p.label),
      text: known.map((p) => p.trials + " trials"), textposition: "none",
      hovertemplate: "%{y}: %{x:.3f} (over %{text})<extra></extra>", marker: { color: "#1f77b4" },
    }], {
      margin: { t: 10, l: 10, r: 20, b: 50 }, height: 90 + 28 * known.length,
      xaxis: { title: { text: "importance (share of the forest)" }, rangemode: "tozero" },
      yaxis: { automargin: true },
    }, HH.PLOT_CONFIG);
  }
  // Ticks for an axis of log10 values: each power of ten in range, with 2x and 5x when it spans under
  // three decades, labelled with the value itself.
  function logTicks(logs) {
    const lo = Math.min(...logs), hi = Math.max(...logs), steps = hi - lo < 3 ? [1, 2, 5] : [1];
    const tickvals = [], ticktext = [];
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
      for (const m of steps) {
        const t = e + Math.log10(m);
        if (t >= lo - 0.05 && t <= hi + 0.05) { tickvals.push(t); ticktext.push(HH.fmt(Number((m * 10 ** e).toPrecision(1)))); }
      }
    }
    const pad = hi - lo < 0.1 ? 0.5 : (hi - lo) * 0.05;
    return { tickvals, ticktext, range: [lo - pad, hi + pad] };
  }
  function drawSlices(rows) {
    const div = document.getElementById("slices");
    const shown = st.params.map((p, i) => [p, i]).filter(([, i]) => rows.some((r) => r.p[i] !== null));
    if (!rows.length || !shown.length) { div.textContent = "No trial with a value yet."; div.classList.add("muted"); return; }
    div.classList.remove("muted");
    if (!div.classList.contains("js-plotly-plot")) div.textContent = "";
    const cols = Math.min(3, shown.length), nrows = Math.ceil(shown.length / cols);
    const traces = [], layout = {
      grid: { rows: nrows, columns: cols, pattern: "independent", ygap: 0.35, xgap: 0.08 }, showlegend: false,
      margin: { t: 10, l: 60, r: 30, b: 50 }, height: 260 * nrows,
    };
    shown.forEach(([p, i], k) => {
      const rs = rows.filter((r) => r.p[i] !== null && (!p.log || p.options.length || r.p[i] > 0));
      const axis = k === 0 ? "" : String(k + 1);
      const logged = p.log && !p.options.length; // drawn over log10 of the value, ticks at 1-2-5 steps
      const label = (r) => (p.options.length ? p.options[r.p[i]] ?? String(r.p[i]) : HH.fmt(r.p[i]));
      traces.push({
        type: "scatter", mode: "markers", xaxis: "x" + axis, yaxis: "y" + axis,
        x: rs.map((r) => (p.options.length ? label(r) : logged ? Math.log10(r.p[i]) : r.p[i])), y: rs.map((r) => r.v),
        text: rs.map(label), customdata: rs.map((r) => r.n),
        marker: { size: 6, color: rs.map((r) => r.n), colorscale: [[0, "#9ecae1"], [1, "#08306b"]] },
        hovertemplate: p.label + " = %{text}<br>trial #%{customdata}: %{y}<extra></extra>",
      });
      const xaxis = { title: { text: p.label + (logged ? " (log)" : ""), font: { size: 11 } }, type: p.options.length ? "category" : "linear" };
      if (p.options.length) Object.assign(xaxis, { categoryorder: "array", categoryarray: p.options }); // the document's order
      if (logged && rs.length) Object.assign(xaxis, logTicks(rs.map((r) => Math.log10(r.p[i]))));
      layout["xaxis" + axis] = xaxis;
      // one objective range for every slice: the plots compare at a glance (and one point is not a range)
      layout["yaxis" + axis] = { title: { text: k % cols === 0 ? st.search.objective_metric : "", font: { size: 11 } },
        matches: k === 0 ? undefined : "y" };
    });
    Plotly.react(div, traces, layout, HH.PLOT_CONFIG);
  }

  // ---------------------------------------------------------------- learning curves
  // Curves are read on demand: those of running trials and of the best finished ones, each fetched
  // again only when its trial changed (its version); a trial without epochs has an empty curve.
  async function drawCurves() {
    const div = document.getElementById("curves");
    const started = [...st.rows.values()].filter((r) => r.s !== "queued");
    let rows = started;
    const finished = started.filter((r) => r.s !== "running");
    const note = document.getElementById("curves-note");
    if (finished.length > CURVES_MAX_FINISHED) {
      // every running trial, and the best finished ones (a trial without a value counts as worst)
      const sign = st.search.objective_mode === "min" ? 1 : -1;
      const key = (r) => (r.v === null ? Infinity : sign * r.v);
      finished.sort((a, b) => key(a) - key(b));
      rows = started.filter((r) => r.s === "running").concat(finished.slice(0, CURVES_MAX_FINISHED));
      note.textContent = "Running trials and the best " + CURVES_MAX_FINISHED + " of " + finished.length + " finished ones.";
    } else note.textContent = "";
    const missing = rows.filter((r) => (st.curves.get(r.id) || {}).ver !== r.ver).map((r) => r.id);
    for (let i = 0; i < missing.length; i += CURVES_PER_REQUEST) {
      const q = new URLSearchParams({ ids: missing.slice(i, i + CURVES_PER_REQUEST).join(",") });
      const data = await HH.getJSON(api + "/curves?" + q);
      for (const [id, c] of Object.entries(data.curves)) st.curves.set(id, c);
    }
    rows = rows.filter((r) => st.curves.has(r.id) && st.curves.get(r.id).c.length)
      .map((r) => Object.assign({}, r, { c: st.curves.get(r.id).c }));
    rows.sort((a, b) => a.n - b.n);
    if (!rows.length) { div.textContent = "No per-epoch history yet."; div.classList.add("muted"); return; }
    div.classList.remove("muted");
    if (!div.classList.contains("js-plotly-plot")) div.textContent = "";
    const traces = [];
    const maxEpoch = Math.max(...rows.map((r) => r.c[r.c.length - 1][0]));
    for (const running of [false, true]) {
      const x = [], y = [], text = [];
      for (const r of rows.filter((r) => (r.s === "running") === running)) {
        for (const [e, v] of r.c) { x.push(e); y.push(v); text.push("trial #" + r.n + " (" + r.s + ")"); }
        x.push(null); y.push(null); text.push("");
      }
      if (!x.length) continue;
      traces.push({
        name: running ? "running" : "finished", type: "scatter", mode: "lines", x, y, text,
        line: running ? { color: HH.STATES.running.color, width: 2.5 } : { color: "rgba(31,119,180,0.45)", width: 1 },
        hovertemplate: "%{text}<br>epoch %{x}: %{y}<extra></extra>", connectgaps: false,
      });
    }
    Plotly.react(div, traces, {
      margin: { t: 20, l: 70, r: 20 }, legend: { orientation: "h" },
      xaxis: { title: { text: "epoch" }, dtick: maxEpoch <= 20 ? 1 : undefined },
      yaxis: { title: { text: st.search.objective_metric } },
    }, HH.PLOT_CONFIG);
  }

  // ---------------------------------------------------------------- trial table
  const table = { page: 1, size: 25, sort: "number", desc: false, state: "" };
  function paramText(p, v) {
    if (v === null || v === undefined) return "";
    return p.options.length ? (p.options[v] ?? String(v)) : HH.fmt(v);
  }
  async function drawTable() {
    const q = new URLSearchParams({ page: table.page, size: table.size, sort: table.sort, desc: table.desc });
    if (table.state) q.set("state", table.state);
    const data = await HH.getJSON(api + "/table?" + q);
    const thead = document.querySelector("#trials thead"), tbody = document.querySelector("#trials tbody");
    const head = document.createElement("tr");
    const sortable = { "#": "number", state: "state", [st.search.objective_metric]: "value", duration: "duration" };
    head.appendChild(HH.el("th", { scope: "col" }, "Compare"));
    const cols = ["#", "state", st.search.objective_metric, ...st.params.map((p) => p.label), "duration"];
    for (const c of cols) {
      const th = HH.el("th", { scope: "col" });
      const key = sortable[c];
      if (key) {
        const b = HH.el("button", { type: "button", class: "sort", "data-sort": key },
          c + (table.sort === key ? (table.desc ? " ▼" : " ▲") : ""));
        if (table.sort === key) th.setAttribute("aria-sort", table.desc ? "descending" : "ascending");
        b.addEventListener("click", () => {
          table.desc = table.sort === key ? !table.desc : key === "value" && st.search.objective_mode === "max";
          table.sort = key; table.page = 1; drawTable();
        });
        th.appendChild(b);
      } else { // a parameter's path may wrap after each dot (a <wbr>), never inside a name
        c.split(".").forEach((part, i) => {
          if (i) { th.appendChild(document.createTextNode(".")); th.appendChild(document.createElement("wbr")); }
          th.appendChild(document.createTextNode(part));
        });
      }
      head.appendChild(th);
    }
    thead.replaceChildren(head);
    const trs = data.rows.map((r) => {
      const tr = document.createElement("tr");
      const box = HH.el("input", { type: "checkbox", class: "pick", "aria-label": "compare trial #" + r.n });
      box.checked = picked.has(r.id);
      box.addEventListener("change", () => { box.checked ? picked.add(r.id) : picked.delete(r.id); updateCompare(); });
      const tdc = document.createElement("td"); tdc.appendChild(box); tr.appendChild(tdc);
      const a = HH.el("a", { href: "/trials/" + r.id }, "#" + r.n);
      const td0 = document.createElement("td"); td0.appendChild(a); tr.appendChild(td0);
      const badge = HH.el("span", { class: "badge st-" + r.s }, r.s);
      const td1 = document.createElement("td"); td1.appendChild(badge); tr.appendChild(td1);
      tr.appendChild(HH.el("td", { class: "num" }, HH.fmt(r.v)));
      st.params.forEach((p, i) => tr.appendChild(HH.el("td", {}, paramText(p, r.p[i]))));
      tr.appendChild(HH.el("td", {}, r.t0 && r.t1 ? HH.duration(r.t1 - r.t0) : ""));
      return tr;
    });
    tbody.replaceChildren(...trs);
    const pages = Math.max(1, Math.ceil(data.total / table.size));
    document.getElementById("table-page").textContent = "Page " + table.page + " of " + pages;
    document.getElementById("table-count").textContent = data.total + " trial" + (data.total === 1 ? "" : "s");
    document.getElementById("table-prev").disabled = table.page <= 1;
    document.getElementById("table-next").disabled = table.page >= pages;
  }
  const picked = new Set();
  const compareBtn = document.getElementById("compare");
  function updateCompare() {
    compareBtn.disabled = picked.size < 2 || picked.size > 5;
    compareBtn.textContent = "Compare selected (" + picked.size + (picked.size > 5 ? ", at most 5" : "") + ")";
  }
  compareBtn.addEventListener("click", () => { location.href = "/compare?trials=" + [...picked].join(","); });
  document.getElementById("table-prev").addEventListener("click", () => { table.page -= 1; drawTable(); });
  document.getElementById("table-next").addEventListener("click", () => { table.page += 1; drawTable(); });
  document.getElementById("table-state").addEventListener("change", (e) => { table.state = e.target.value; table.page = 1; drawTable(); });

  // ---------------------------------------------------------------- summary and actions
  function drawSummary() {
    const s = st.search;
    const status = document.getElementById("status");
    status.textContent = s.status; status.className = "badge st-" + s.status;
    const progress = document.getElementById("progress");
    progress.max = s.max_trials; progress.value = s.counts.finished;
    document.getElementById("counts").textContent = s.counts.finished + "/" + s.max_trials + " finished";
    const best = document.getElementById("best");
    best.textContent = s.best_value === null ? "none yet" : HH.fmt(s.best_value);
    if (s.best_trial_id) best.href = "/trials/" + s.best_trial_id;
    if (s.best_trial_id && s.best_trial_id !== st.bestShown) refreshBest();
    const cancel = document.getElementById("cancel"), extend = document.getElementById("extend");
    if (cancel) cancel.disabled = FINAL.includes(s.status);
    if (extend) extend.disabled = s.status === "cancelled";
  }
  // The best configuration follows the search's best trial without a reload.
  let bestLoading = false;
  async function refreshBest() {
    if (bestLoading) return;
    bestLoading = true;
    try {
      const b = await HH.getJSON(api + "/best");
      if (b.id === null) return;
      document.getElementById("best-link").href = "/trials/" + b.id;
      document.getElementById("best-number").textContent = b.number;
      document.getElementById("best-value").textContent = b.value;
      document.getElementById("best-yaml").textContent = b.yaml;
      document.getElementById("best-json").textContent = b.json;
      document.getElementById("best-none").hidden = true;
      document.getElementById("best-body").hidden = false;
      if (st.bestShown !== null) document.getElementById("best-updated").textContent = "Updated: a new best trial.";
      st.bestShown = b.id;
    } catch (e) {
      console.warn("best configuration refresh failed:", e.message);
    } finally { bestLoading = false; }
  }
  async function act(path, body, confirmText) {
    if (confirmText && !window.confirm(confirmText)) return;
    const msg = document.getElementById("action-msg");
    try {
      st.search = await HH.postJSON(api + path, body);
      msg.textContent = path === "/cancel" ? "Search cancelled." : "Budget extended.";
      drawSummary(); schedule(0);
    } catch (e) { msg.textContent = "Failed: " + e.message; msg.classList.add("error"); }
  }
  const cancelBtn = document.getElementById("cancel");
  if (cancelBtn) cancelBtn.addEventListener("click", () => act("/cancel", {}, "Cancel this search? Running trials are stopped."));
  const extendBtn = document.getElementById("extend");
  if (extendBtn) extendBtn.addEventListener("click", () =>
    act("/extend", { n: parseInt(document.getElementById("extend-n").value, 10) }));
  document.getElementById("history-log").addEventListener("click", (e) => {
    logScale = !logScale; e.target.setAttribute("aria-pressed", String(logScale));
    drawHistory();
  });

  // ---------------------------------------------------------------- polling
  async function poll() {
    st.timer = null;
    let changed = false;
    try {
      const q = new URLSearchParams({ since: st.epoch ? st.revision : 0 });
      if (st.epoch) q.set("epoch", st.epoch);
      const data = await HH.getJSON(api + "/rows?" + q);
      if (data.full) { st.rows = new Map(); st.params = data.params || []; }
      const c = data.rows; // columns
      for (let i = 0; i < c.id.length; i++) st.rows.set(c.id[i], { id: c.id[i], n: c.n[i], s: c.s[i], v: c.v[i], ver: c.ver[i] });
      changed = data.full || c.id.length > 0;
      st.epoch = data.epoch; st.revision = data.revision; st.search = data.search;
      drawSummary();
      if (changed) {
        // the history first, then the table, then the plots that need more data from the server.
        // performance marks (hh:*) let benchmarks/dashboard.py see where the time goes.
        // Each step yields to the browser, so that it paints each plot and stays responsive.
        const step = () => new Promise((resolve) => setTimeout(resolve, 0));
        performance.mark("hh:rows");
        drawHistory(); performance.mark("hh:history"); await step();
        await drawTable(); performance.mark("hh:table"); await step();
        const sampled = await plotRows();
        drawParcoords(sampled); performance.mark("hh:parcoords"); await step();
        drawSlices(sampled); performance.mark("hh:slices"); await step();
        await drawCurves(); performance.mark("hh:curves"); await step();
        await drawImportance(); performance.mark("hh:importance");
      }
      document.body.dataset.revision = String(st.revision);
    } catch (e) {
      console.warn("dashboard refresh failed:", e.message);
    }
    if (!FINAL.includes(st.search.status)) schedule(POLL_MS);
  }
  function schedule(ms) {
    if (st.timer) clearTimeout(st.timer);
    st.timer = setTimeout(poll, ms);
  }
  poll();
})();
