// XDV View's progressive layer: the time slider and step buttons swap in the panels at a
// logical time, the timeline (processes x logical time) pages its marks from the server as it
// is zoomed, and a small plot shows the recorded Q fidelity and Φ stability. Without this
// script every control still works as a plain link or form.
import htmx from "htmx.org";

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHTML = (text) => String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
import * as echarts from "echarts/core";
import { LineChart, ScatterChart } from "echarts/charts";
import {
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TooltipComponent,
} from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([
  LineChart,
  ScatterChart,
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TooltipComponent,
  CanvasRenderer,
]);
htmx.config.includeIndicatorStyles = false;
window.htmx = htmx;

const COLORS = {
  scheduler: "#9aa5b1",
  lifecycle: "#3e4c59",
  K: "#2f80ed",
  Q: "#9b51e0",
  "Φ": "#f2994a",
  transition: "#eb5757",
  effect: "#27ae60",
  fault: "#c0392b",
  other: "#cbd2d9",
};

function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function travelSetup(state) {
  const travel = document.getElementById("travel");
  if (!travel) return;
  const base = travel.dataset.base;
  const slider = document.getElementById("L");
  const output = document.getElementById("L-out");
  let pending = 0;

  async function go(L) {
    const ticket = ++pending;
    slider.value = String(L);
    output.textContent = `L = ${L}`;
    const response = await fetch(`${base}panels?L=${L}`, { credentials: "same-origin" });
    if (!response.ok || ticket !== pending) return;
    const html = await response.text();
    const panels = document.getElementById("panels");
    panels.outerHTML = html;
    const fresh = document.getElementById("panels");
    document.getElementById("prev").value = fresh.dataset.prev;
    document.getElementById("next").value = fresh.dataset.next;
    history.replaceState(null, "", `${base}?L=${L}`);
    state.L = Number(L);
    if (state.timeline) state.timeline.mark(state.L);
    document.body.dataset.l = String(L);
  }
  state.go = go;

  slider.addEventListener("input", debounce(() => go(slider.value), 80));
  for (const id of ["first", "prev", "next", "last"]) {
    const button = document.getElementById(id);
    button.addEventListener("click", (event) => {
      event.preventDefault();
      go(button.value);
    });
  }
}

function timelineSetup(state) {
  const element = document.getElementById("timeline");
  if (!element) return;
  const url = element.dataset.url;
  const lmax = Number(document.getElementById("travel").dataset.lmax);
  const chart = echarts.init(element, null, { renderer: "canvas" });
  let rows = [];
  let categories = [];
  let ticket = 0;

  function series(data) {
    return categories.map((name, code) => ({
      name,
      type: "scatter",
      symbolSize: (value) => Math.min(16, 7 + Math.log2(value[3] || 1)),
      itemStyle: { color: COLORS[name] || "#888" },
      large: true,
      largeThreshold: 3000,
      data: data.points.filter((p) => p[2] === code),
      markLine:
        code === 0
          ? {
              silent: true,
              symbol: "none",
              lineStyle: { color: "#d64545", width: 2 },
              data: [{ xAxis: state.L }],
              label: { formatter: "L" },
            }
          : undefined,
    }));
  }

  async function load(low, high, first) {
    const mine = ++ticket;
    const response = await fetch(`${url}?low=${Math.max(0, Math.floor(low))}&high=${Math.ceil(high)}`, {
      credentials: "same-origin",
    });
    if (!response.ok || mine !== ticket) return;
    const data = await response.json();
    rows = data.rows;
    categories = data.categories;
    element.dataset.points = String(data.points.length);
    element.dataset.bucket = String(data.bucket);
    if (first) {
      chart.setOption({
        animation: false,
        grid: { left: 120, right: 20, top: 30, bottom: 60 },
        legend: { top: 0, type: "scroll" },
        tooltip: {
          trigger: "item",
          // ECharts writes a tooltip as HTML: process names come from the workload, so escape.
          formatter: (p) =>
            `L ${p.value[0]} · ${escapeHTML(rows[p.value[1]])} · ${escapeHTML(p.seriesName)}` +
            (p.value[3] > 1 ? ` ×${p.value[3]}` : ""),
        },
        xAxis: { type: "value", name: "L", min: 0, max: Math.max(1, lmax), scale: true },
        yAxis: { type: "category", data: rows, inverse: true, axisLabel: { width: 110, overflow: "truncate" } },
        dataZoom: [
          { type: "inside", xAxisIndex: 0, filterMode: "none" },
          { type: "slider", xAxisIndex: 0, filterMode: "none", height: 18, bottom: 8 },
          { type: "inside", yAxisIndex: 0, filterMode: "none", zoomOnMouseWheel: "shift" },
        ],
        series: series(data),
      });
    } else {
      chart.setOption({ yAxis: { data: rows }, series: series(data) });
    }
    document.body.dataset.timeline = "ready";
  }

  const reload = debounce(() => {
    const zoom = chart.getOption().dataZoom[0];
    const span = Math.max(1, lmax);
    const low = zoom.startValue ?? (zoom.start / 100) * span;
    const high = zoom.endValue ?? (zoom.end / 100) * span;
    element.dataset.low = String(Math.floor(low));
    element.dataset.high = String(Math.ceil(high));
    load(low, high, false);
  }, 120);
  chart.on("datazoom", reload);
  chart.on("click", (p) => {
    if (p.value && state.go) state.go(p.value[0]);
  });
  window.addEventListener("resize", () => chart.resize());
  state.timeline = {
    chart,
    mark(L) {
      chart.setOption({ series: [{ markLine: { data: [{ xAxis: L }] } }] });
    },
    zoom(low, high) {
      chart.dispatchAction({ type: "dataZoom", dataZoomIndex: 0, startValue: low, endValue: high });
    },
  };
  load(0, lmax, true);
}

function plotsSetup() {
  const element = document.getElementById("plots");
  if (!element) return;
  const data = JSON.parse(element.dataset.plots || "{}");
  const chart = echarts.init(element, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    grid: { left: 50, right: 20, top: 30, bottom: 30 },
    legend: { top: 0 },
    tooltip: { trigger: "axis" },
    xAxis: { type: "value", name: "L", scale: true },
    yAxis: { type: "value", min: 0, max: 1 },
    series: [
      { name: "Q fidelity", type: "line", data: data.fidelity || [], itemStyle: { color: COLORS.Q } },
      { name: "Φ stability", type: "line", data: data.stability || [], itemStyle: { color: COLORS["Φ"] } },
    ],
  });
  window.addEventListener("resize", () => chart.resize());
}

document.addEventListener("DOMContentLoaded", () => {
  const panels = document.getElementById("panels");
  const state = { L: panels ? Number(panels.dataset.l) : 0, timeline: null, go: null };
  window.xdvView = state;
  travelSetup(state);
  timelineSetup(state);
  plotsSetup();
  document.body.dataset.ready = "1";
});
