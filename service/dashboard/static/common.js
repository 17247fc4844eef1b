// Shared by the dashboard's pages: JSON fetches with the CSRF token, state styles, copy and download.
"use strict";
const HH = (() => {
  const csrf = JSON.parse(document.getElementById("csrf").textContent);
  // Colour and marker shape per state: readable without colour alone.
  const STATES = {
    done: { color: "#1f77b4", symbol: "circle" },
    pruned: { color: "#ff7f0e", symbol: "triangle-down" },
    failed: { color: "#d62728", symbol: "x" },
    cancelled: { color: "#7f7f7f", symbol: "square-open" },
    running: { color: "#2ca02c", symbol: "diamond" },
    queued: { color: "#bcbd22", symbol: "circle-open" },
  };
  function prefetched(url) { // started by prefetch.js; used once
    const pending = window.HH_PREFETCH && window.HH_PREFETCH[url];
    if (pending) delete window.HH_PREFETCH[url];
    return pending;
  }
  async function getJSON(url) {
    const r = await (prefetched(url) || fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }));
    if (r.status === 401) { window.location = "/login?next=" + encodeURIComponent(location.pathname); }
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }
  async function postJSON(url, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const d = data.detail;
      throw new Error(typeof d === "string" ? d : (Array.isArray(d) ? d.map((e) => e.msg).join("; ") : "HTTP " + r.status));
    }
    return data;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+(e|$)/, "$1");
    return String(v);
  }
  function duration(s) {
    if (s === null || s === undefined || s < 0) return "";
    s = Math.floor(s);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  const PLOT_CONFIG = { displaylogo: false, responsive: true };
  function wireButtons() {
    for (const b of document.querySelectorAll("button.copy")) {
      b.addEventListener("click", async () => {
        const text = document.getElementById(b.dataset.target).textContent;
        try { await navigator.clipboard.writeText(text); b.textContent = "Copied"; }
        catch (e) { b.textContent = "Copy failed: select the text"; }
      });
    }
    for (const b of document.querySelectorAll("button.download")) {
      b.addEventListener("click", () => {
        const text = document.getElementById(b.dataset.target).textContent;
        const url = URL.createObjectURL(new Blob([text], { type: b.dataset.type }));
        const a = el("a", { href: url, download: b.dataset.filename });
        document.body.appendChild(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      });
    }
  }
  document.addEventListener("DOMContentLoaded", wireButtons);
  return { csrf, STATES, getJSON, postJSON, fmt, duration, el, PLOT_CONFIG };
})();
