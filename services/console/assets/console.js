// lienthong console: redraws the overview from /api/overview every few seconds.
// Every other page is plain HTML and works without this script.
"use strict";
(function () {
  const tiles = document.getElementById("in-per-s");
  if (!tiles) return;
  const fmt = (x, digits) => (x === null || x === undefined) ? "–" : Number(x).toFixed(digits);
  const ms = (s) => (s === null || s === undefined) ? "–" : (s * 1000).toFixed(0) + " ms";
  const pct = (x) => (x === null || x === undefined) ? "–" : (x * 100).toFixed(2) + " %";
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(tag === "svg" || ["polyline", "line", "text", "rect"].includes(tag)
      ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  function rows(table, list, cells, none) {
    const body = table.querySelector("tbody");
    body.replaceChildren();
    if (list.length === 0) {
      const tr = el("tr"); tr.appendChild(el("td", { colspan: "3" }, none || "–")); body.appendChild(tr);
      return;
    }
    for (const item of list) {
      const tr = el("tr");
      for (const c of cells(item)) tr.appendChild(el("td", {}, String(c)));
      body.appendChild(tr);
    }
  }
  function chart(svg, series) {
    svg.replaceChildren();
    const W = 600, H = 160, pad = 30;
    const max = Math.max(1, ...series.map(p => Math.max(p.in, p.out)));
    const t0 = series.length ? series[0].t : 0, t1 = series.length ? series[series.length - 1].t : 1;
    const x = t => pad + (W - pad - 10) * (t1 === t0 ? 1 : (t - t0) / (t1 - t0));
    const y = v => H - 20 - (H - 40) * v / max;
    svg.appendChild(el("line", { class: "axis", x1: pad, y1: H - 20, x2: W - 10, y2: H - 20 }));
    svg.appendChild(el("text", { x: 2, y: 14 }, max.toFixed(1) + "/s"));
    for (const key of ["in", "out"]) {
      const pts = series.map(p => x(p.t).toFixed(1) + "," + y(p[key]).toFixed(1)).join(" ");
      svg.appendChild(el("polyline", { class: key, points: pts }));
    }
    svg.appendChild(el("text", { x: W - 170, y: 14, class: "legend-in", fill: "#1565c0" }, "— " + svg.dataset.in));
    svg.appendChild(el("text", { x: W - 90, y: 14, class: "legend-out", fill: "#2e7d32" }, "— " + svg.dataset.out));
  }
  async function refresh() {
    try {
      const r = await fetch("/api/overview", { credentials: "same-origin" });
      if (r.status === 303 || r.redirected) { location.href = "/login"; return; }
      const { figures: f, peers } = await r.json();
      document.getElementById("in-per-s").textContent = fmt(f.inPerSec, 2);
      document.getElementById("out-per-s").textContent = fmt(f.outPerSec, 2);
      document.getElementById("error-rate").textContent = pct(f.stageErrorRate) + " · HTTP " + pct(f.httpErrorRate);
      document.getElementById("latency").textContent = f.latency.map(ms).join(" / ");
      chart(document.getElementById("throughput"), f.series);
      rows(document.getElementById("queues"), f.queues, q => [q.queue, q.messages, q.consumers]);
      const peerTable = document.getElementById("peers");
      if (Array.isArray(peers)) {
        rows(peerTable, peers, p => [p.bus, p.waiting, p.forwarders], peerTable.dataset.none);
      }
      document.getElementById("sources").textContent = (f.errors || []).join("; ");
      document.body.dataset.refreshed = String(f.atMs);
    } catch (e) {
      document.getElementById("sources").textContent = String(e);
    }
  }
  refresh();
  setInterval(refresh, 2000);
})();
