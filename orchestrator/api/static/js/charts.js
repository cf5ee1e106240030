// Bar and line charts drawn as SVG: axes with round ticks, a legend, a tooltip per mark.

import { h, s } from "./dom.js";
import { truncate } from "./format.js";

const M = { top: 14, right: 16, bottom: 30, left: 64 };
const HEIGHT = 240;

/** Round tick values from 0 to at least ``max`` (about ``n`` of them; whole numbers if asked). */
export function ticks(max, n = 4, integer = false) {
  if (!(max > 0)) return [0, 1];
  const raw = integer ? Math.max(1, max / n) : max / n;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const steps = integer && magnitude === 1 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  const step = steps.map((k) => k * magnitude).find((k) => k >= raw);
  const out = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function yAxis(values, width, format) {
  const top = values.at(-1);
  const plotH = HEIGHT - M.top - M.bottom;
  const yOf = (v) => M.top + plotH - (v / top) * plotH;
  const grid = values.map((v) =>
    s(
      "g",
      { class: "tick" },
      s("line", { x1: M.left, x2: width - M.right, y1: yOf(v), y2: yOf(v) }),
      s("text", { x: M.left - 6, y: yOf(v) + 4, "text-anchor": "end" }, format(v)),
    ),
  );
  return { yOf, grid };
}

function figure(id, title, width, series, marks) {
  const svg = s(
    "svg",
    { viewBox: `0 0 ${width} ${HEIGHT}`, width, height: HEIGHT, class: "chart-svg", role: "img" },
    marks,
  );
  svg.setAttribute("aria-label", title || id);
  return h(
    "figure",
    { class: "chart", "data-chart": id },
    title ? h("figcaption", {}, title) : null,
    svg,
    chartLegend(series),
  );
}

/** A chart's legend: one swatch per series. */
export function chartLegend(series) {
  return h("div", { class: "legend" }, series.map((se) => h("span", { class: `chip ${se.cls}` }, se.name)));
}

/**
 * Grouped vertical bars: one group per category, one bar per series.
 * ``series`` = [{name, cls, values}] (null values draw nothing); ``format`` labels the y axis;
 * ``id`` names the chart (data-chart), ``title`` captions it, ``integer`` keeps y ticks whole.
 */
export function barChart({ id, title, categories, series, format = String, integer = false }) {
  const groupW = Math.max(36, series.length * 16 + 18);
  const width = Math.max(420, M.left + M.right + categories.length * groupW);
  const plotW = width - M.left - M.right;
  const slot = plotW / Math.max(1, categories.length);
  const barW = Math.min(22, (slot - 12) / series.length);
  const max = Math.max(0, ...series.flatMap((se) => se.values.filter((v) => v != null)));
  const { yOf, grid } = yAxis(ticks(max, 4, integer), width, format);
  const bars = categories.flatMap((cat, i) => {
    const x0 = M.left + i * slot + (slot - barW * series.length) / 2;
    return series.map((se, j) => {
      const v = se.values[i];
      if (v == null) return null;
      const y = yOf(v);
      const box = { x: x0 + j * barW, y, width: Math.max(1, barW - 2), height: Math.max(0, yOf(0) - y) };
      const tip = s("title", {}, `${cat} · ${se.name}: ${format(v)}`);
      return s("rect", { class: `mark ${se.cls}`, ...box, rx: 2 }, tip);
    });
  });
  const labels = categories.map((cat, i) =>
    s(
      "text",
      { class: "x-label", x: M.left + i * slot + slot / 2, y: HEIGHT - M.bottom + 16 },
      s("title", {}, cat),
      truncate(cat, Math.max(4, Math.floor(slot / 7))),
    ),
  );
  return figure(id, title, width, series, [grid, bars, labels]);
}

/**
 * Lines over time: ``xs`` are epoch ms, ``series`` = [{name, cls, values}] aligned with ``xs``.
 * ``formatX`` labels the time axis, ``format`` the y axis; ``integer`` keeps y ticks whole.
 */
export function lineChart({ id, title, xs, series, format = String, formatX = String, integer = false }) {
  const width = 760;
  const plotW = width - M.left - M.right;
  const x0 = Math.min(...xs);
  const span = Math.max(1, Math.max(...xs) - x0);
  const xOf = (x) => M.left + (xs.length > 1 ? ((x - x0) / span) * plotW : plotW / 2);
  const max = Math.max(0, ...series.flatMap((se) => se.values));
  const { yOf, grid } = yAxis(ticks(max, 4, integer), width, format);
  const every = Math.max(1, Math.ceil(xs.length / 8));
  const xLabels = xs
    .filter((_, i) => i % every === 0)
    .map((x) => s("text", { class: "x-label", x: xOf(x), y: HEIGHT - M.bottom + 16 }, formatX(x)));
  const lines = series.map((se) => {
    const points = xs.map((x, i) => `${xOf(x)},${yOf(se.values[i] ?? 0)}`);
    return s(
      "g",
      { class: `series ${se.cls}` },
      s("polyline", { class: "line", points: points.join(" ") }),
      xs.map((x, i) => {
        const v = se.values[i] ?? 0;
        const tip = s("title", {}, `${formatX(x)} · ${se.name}: ${format(v)}`);
        return s("circle", { class: "dot", cx: xOf(x), cy: yOf(v), r: 3 }, tip);
      }),
    );
  });
  return figure(id, title, width, series, [grid, lines, xLabels]);
}

/** A small horizontal bar of a 0..1 rate (null draws an empty track). */
export function rateBar(rate) {
  const w = 80;
  const filled = rate == null ? 0 : Math.max(0, Math.min(1, rate)) * w;
  const cls = rate == null ? "" : rate >= 0.95 ? "good" : rate >= 0.8 ? "fair" : "bad";
  return s(
    "svg",
    { class: "rate-bar", viewBox: `0 0 ${w} 8`, width: w, height: 8 },
    s("rect", { class: "track", x: 0, y: 0, width: w, height: 8, rx: 4 }),
    s("rect", { class: `fill ${cls}`, x: 0, y: 0, width: filled, height: 8, rx: 4 }),
  );
}
