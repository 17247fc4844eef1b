// Starts a page's first data requests before plotly.js is parsed (a first visit spends most of its
// time there), so the server answers meanwhile; HH.getJSON takes each answer once, by its exact URL.
"use strict";
window.HH_PREFETCH = {};
for (const url of JSON.parse(document.getElementById("prefetch").textContent)) {
  const answer = fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  answer.catch(() => {}); // a failure is reported where the answer is used
  window.HH_PREFETCH[url] = answer;
}
