// Draws every chart of a dashboard page from the data endpoint named in its data-src, and
// keeps the elements marked data-refresh current. The same rows are behind the JSON and CSV
// links next to each chart.
"use strict";

const CONFIG = { displaylogo: false, responsive: true };
const LAYOUT = {
  margin: { l: 60, r: 20, t: 30, b: 50 },
  font: { family: "system-ui, sans-serif", size: 12 },
  paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "#fafbfc",
  legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
};
const BLUE = "#1f6feb";
const RED = "#d73a49";
const GREY = "#6a737d";

function withFormat(src, format) {
  const url = new URL(src, window.location.href);
  url.searchParams.set("format", format);
  return url.pathname + url.search;
}

async function fetchRows(src) {
  const response = await fetch(withFormat(src, "json"), { headers: { Accept: "application/json" } });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail || detail;
    } catch (_) {
      // not JSON: keep the status text
    }
    throw new Error(detail);
  }
  return response.json();
}

function column(rows, name) {
  return rows.map((row) => row[name]);
}

function bar(rows, el) {
  const names = el.dataset.y.split(",");
  return {
    data: names.map((name) => ({
      type: "bar",
      name: name.replaceAll("_", " "),
      x: column(rows, el.dataset.x).map(String),
      y: column(rows, name),
    })),
    layout: { barmode: "group", showlegend: names.length > 1, xaxis: { type: "category" } },
  };
}

function heatmap(rows, el) {
  const name = el.dataset.z;
  const positions = [...new Set(column(rows, "position"))].sort((a, b) => a - b);
  const width = Math.max(...column(rows, "candidate")) + 1;
  const labels = Array.from({ length: width }, (_, c) => {
    const row = rows.find((r) => r.candidate === c);
    return row ? row.candidate_label : String(c);
  });
  const z = positions.map(() => Array(width).fill(null));
  const text = positions.map(() => Array(width).fill(""));
  for (const row of rows) {
    const p = positions.indexOf(row.position);
    z[p][row.candidate] = row[name];
    const estimated = row.estimated ? " (estimated by the regression)" : "";
    text[p][row.candidate] = row.layer_key + estimated;
  }
  const ratio = name === "ratio";
  return {
    data: [
      {
        type: "heatmap",
        x: labels,
        y: positions.map((p) => `layer ${p}`),
        z,
        text,
        hovertemplate: `%{text}<br>%{z:.4g}${ratio ? "×" : " ms"}<extra></extra>`,
        colorscale: ratio ? "RdBu" : "Viridis",
        reversescale: ratio,
        zmid: ratio ? 1 : undefined,
        colorbar: { title: { text: ratio ? "ratio" : "ms" } },
      },
    ],
    layout: { yaxis: { autorange: "reversed" }, height: Math.max(320, 22 * positions.length + 80) },
  };
}

function band(lo, hi, pct, color) {
  const f = pct / 100;
  return [
    { x: [lo, hi], y: [lo * (1 - f), hi * (1 - f)], mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false },
    { x: [lo, hi], y: [lo * (1 + f), hi * (1 + f)], mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: color, name: `±${pct}%`, hoverinfo: "skip" },
  ];
}

function pvm(rows) {
  const measured = column(rows, "measured_ms");
  const predicted = column(rows, "predicted_ms");
  const all = measured.concat(predicted);
  const lo = Math.min(...all) * 0.95;
  const hi = Math.max(...all) * 1.05;
  return {
    data: [
      ...band(lo, hi, 10, "rgba(31,111,235,0.10)"),
      ...band(lo, hi, 5, "rgba(31,111,235,0.18)"),
      { x: [lo, hi], y: [lo, hi], mode: "lines", name: "predicted = measured", line: { color: GREY, dash: "dot" } },
      {
        type: "scatter",
        mode: "markers",
        name: "networks",
        x: measured,
        y: predicted,
        text: column(rows, "architecture"),
        customdata: column(rows, "error_pct"),
        hovertemplate: "%{text}<br>measured %{x:.3f} ms<br>predicted %{y:.3f} ms (%{customdata:+.1f}%)<extra></extra>",
        marker: { color: BLUE, size: 7, opacity: 0.8 },
      },
    ],
    layout: {
      xaxis: { title: { text: "measured (ms)" }, range: [lo, hi] },
      yaxis: { title: { text: "predicted (ms)" }, range: [lo, hi] },
      height: 480,
    },
  };
}

function versions(rows, el) {
  const metric = el.dataset.metric;
  const models = [...new Set(column(rows, "model"))].sort((a, b) =>
    a === "predictor" ? -1 : b === "predictor" ? 1 : a.localeCompare(b),
  );
  return {
    data: models.map((model) => {
      const mine = rows.filter((r) => r.model === model);
      const own = model === "predictor";
      return {
        type: "scatter",
        mode: "lines+markers",
        name: own ? "hwlat predictor" : model,
        x: column(mine, "predictor_version"),
        y: column(mine, metric),
        line: { width: own ? 3 : 1.5, dash: own ? "solid" : "dash" },
        marker: { size: own ? 9 : 6 },
      };
    }),
    layout: {
      xaxis: { title: { text: "predictor version" }, dtick: 1 },
      yaxis: { title: { text: el.dataset.label } },
      height: 300,
    },
  };
}

function history(rows) {
  const inliers = rows.filter((r) => !r.outlier);
  const outliers = rows.filter((r) => r.outlier);
  const times = column(rows, "measured_at");
  const current = rows[0].current_ms;
  const trace = (subset, name, marker) => ({
    type: "scatter",
    mode: "markers",
    name,
    x: column(subset, "measured_at"),
    y: column(subset, "median_ms"),
    customdata: subset.map((r) => [r.id, r.temp_before_c, r.temp_after_c]),
    hovertemplate: "measurement %{customdata[0]}<br>%{y:.4f} ms<br>%{customdata[1]} → %{customdata[2]} °C<extra></extra>",
    marker,
  });
  return {
    data: [
      trace(inliers, "measurements", { color: BLUE, size: 7 }),
      trace(outliers, "outliers (left out)", { color: RED, size: 10, symbol: "x" }),
      {
        type: "scatter",
        mode: "lines",
        name: "current value",
        x: [times.reduce((a, b) => (a < b ? a : b)), times.reduce((a, b) => (a > b ? a : b))],
        y: [current, current],
        line: { color: GREY, dash: "dash" },
      },
    ],
    layout: { xaxis: { title: { text: "measured at" } }, yaxis: { title: { text: "median (ms)" } } },
  };
}

const BUILDERS = { bar, heatmap, pvm, versions, history };

function showMessage(el, message) {
  if (window.Plotly) window.Plotly.purge(el);
  el.replaceChildren();
  const p = document.createElement("p");
  p.className = "empty";
  p.textContent = message;
  el.appendChild(p);
}

// A bar chart of a column most rows lack (a metric only some layers were measured for) draws
// the rows that have it; with none, the chart says it has no data instead of drawing nothing.
function usable(rows, el) {
  if (el.dataset.kind !== "bar") return rows;
  const names = el.dataset.y.split(",");
  return rows.filter((row) => names.some((name) => row[name] !== null && row[name] !== undefined));
}

async function drawChart(el) {
  try {
    const rows = usable(await fetchRows(el.dataset.src), el);
    if (rows.length === 0) {
      showMessage(el, el.dataset.empty || "no data yet");
    } else {
      const figure = BUILDERS[el.dataset.kind](rows, el);
      if (el.querySelector("p.empty")) el.replaceChildren();
      await window.Plotly.react(el, figure.data, { ...LAYOUT, ...figure.layout }, CONFIG);
    }
    delete el.dataset.error;
  } catch (error) {
    el.dataset.error = error.message;
    showMessage(el, error.message);
  }
  el.dataset.rendered = String(Number(el.dataset.rendered || 0) + 1);
}

function cell(row, name) {
  const td = document.createElement("td");
  td.dataset.col = name;
  const value = row[name];
  if (value === null || value === undefined) {
    td.innerHTML = '<span class="none">–</span>';
  } else if (name.endsWith("_at") && typeof value === "string") {
    const time = document.createElement("time");
    time.dateTime = value;
    time.textContent = value.slice(0, 19).replace("T", " ");
    td.appendChild(time);
  } else if (typeof value === "number" && !Number.isInteger(value)) {
    td.textContent = value.toPrecision(4).replace(/\.?0+$/, "");
  } else {
    td.textContent = String(value);
  }
  return td;
}

async function refreshTable(table) {
  const columns = table.dataset.columns.split(",");
  const rows = await fetchRows(table.dataset.src);
  const body = document.createElement("tbody");
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.dataset.id = row[columns[0]];
    for (const name of columns) tr.appendChild(cell(row, name));
    body.appendChild(tr);
  }
  if (rows.length === 0) {
    body.innerHTML = `<tr class="empty"><td colspan="${columns.length}">nothing yet</td></tr>`;
  }
  table.tBodies[0].replaceWith(body);
  table.dataset.refreshed = String(Number(table.dataset.refreshed || 0) + 1);
}

function every(ms, task) {
  const tick = async () => {
    try {
      await task();
    } finally {
      window.setTimeout(tick, ms);
    }
  };
  window.setTimeout(tick, ms);
}

document.addEventListener("DOMContentLoaded", () => {
  // Here rather than in onchange attributes: the pages' Content-Security-Policy allows no
  // inline script.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
  document.body.dataset.ready = "1";
  for (const el of document.querySelectorAll(".chart[data-kind]")) {
    drawChart(el);
    if (el.dataset.refresh) every(Number(el.dataset.refresh), () => drawChart(el));
  }
  for (const table of document.querySelectorAll("table.data[data-refresh]")) {
    every(Number(table.dataset.refresh), () => refreshTable(table).catch(() => undefined));
  }
  const stamp = document.getElementById("jobs-updated");
  if (stamp) {
    every(Number(stamp.dataset.refresh), async () => {
      stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
    });
  }
});
