/* cloudbridge dashboard: charts (uPlot, vendored), live logs (server-sent events), endpoint invoke box. */
(function () {
  "use strict";
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
  window.cbCharts = {};

  function mergeX(seriesList) {
    const xs = new Set();
    seriesList.forEach(s => s.forEach(p => xs.add(p[0])));
    return Array.from(xs).sort((a, b) => a - b);
  }

  function align(xs, pts) {
    const byX = new Map(pts.map(p => [p[0], p[1]]));
    return xs.map(x => (byX.has(x) ? byX.get(x) : null));
  }

  function draw(id, xLabel, named) {
    const el = document.getElementById(id);
    if (!el || typeof uPlot === "undefined") return;
    named = named.filter(n => n.points.length);
    el.innerHTML = "";
    const xs = mergeX(named.map(n => n.points));
    const data = [xs, ...named.map(n => align(xs, n.points))];
    const series = [{ label: xLabel }, ...named.map((n, i) => ({
      label: n.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
      points: { show: true, size: 5 },
    }))];
    const chart = new uPlot({ width: 560, height: 260, series: series, scales: { x: { time: false } },
                              axes: [{ label: xLabel }, {}] }, data, el);
    window.cbCharts[id] = chart;
    // how many points the main run's first series draws (the browser tests read this)
    el.dataset.points = named.length ? String(named[0].points.length) : "0";
    return chart;
  }

  function drawAll(charts) {
    const runs = [charts.main, ...charts.overlays];
    const several = runs.length > 1;
    const loss = [];
    runs.forEach(r => {
      loss.push({ label: several ? r.job_id + " loss" : "loss", points: r.loss });
      if (r.eval_loss.length) loss.push({ label: several ? r.job_id + " eval_loss" : "eval_loss", points: r.eval_loss });
    });
    draw("chart-loss", "step", loss);
    const epoch = [];
    runs.forEach(r => Object.keys(r.epoch).forEach(name => {
      if (name === "eval_loss") return;
      epoch.push({ label: several ? r.job_id + " " + name : name, points: r.epoch[name] });
    }));
    draw("chart-epoch", "epoch", epoch);
  }

  function setupCharts() {
    const holder = document.getElementById("chart-data");
    if (!holder) return;
    const charts = JSON.parse(holder.textContent);
    drawAll(charts);
    const log = document.getElementById("log");
    if (!log || log.dataset.terminal === "yes") return;
    // a running job: poll its series and redraw as it grows
    const timer = setInterval(async () => {
      const reply = await fetch("/api/jobs/" + encodeURIComponent(charts.main.job_id) + "/metrics");
      if (!reply.ok) return;
      const fresh = await reply.json();
      if (fresh.points !== charts.main.points) {
        if (!document.getElementById("chart-loss")) { location.reload(); return; }
        charts.main = fresh;
        drawAll(charts);
      }
      if (["SUCCEEDED", "FAILED", "CANCELLED"].includes(fresh.state)) clearInterval(timer);
    }, 1500);
  }

  function setupLogs() {
    const log = document.getElementById("log");
    if (!log) return;
    const rank = document.getElementById("rank");
    const follow = document.getElementById("follow");
    let source = null;
    function open() {
      if (source) source.close();
      log.textContent = "";
      const q = rank && rank.value !== "" ? "?rank=" + rank.value : "";
      source = new EventSource("/jobs/" + encodeURIComponent(log.dataset.job) + "/logs" + q);
      source.onmessage = e => {
        log.appendChild(document.createTextNode(e.data + "\n"));
        if (!follow || follow.checked) log.scrollTop = log.scrollHeight;
      };
      source.addEventListener("end", e => {
        source.close();
        log.dataset.ended = e.data;
        const state = document.getElementById("state");
        if (state && state.textContent !== e.data) { state.textContent = e.data; state.className = "state " + e.data; }
        const cancel = document.getElementById("cancel-form");
        if (cancel) cancel.remove();
      });
    }
    if (rank) rank.addEventListener("change", open);
    open();
  }

  function setupInvoke() {
    document.querySelectorAll("form.invoke").forEach(form => {
      form.addEventListener("submit", async e => {
        e.preventDefault();
        const out = form.querySelector(".reply");
        const reply = await fetch(form.dataset.url, { method: "POST", headers: { "Content-Type": "application/json" },
                                                      body: form.elements.payload.value || "null" });
        out.textContent = JSON.stringify(await reply.json(), null, 2);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => { setupCharts(); setupLogs(); setupInvoke(); });
})();
