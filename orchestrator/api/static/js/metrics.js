// The metrics page: success rates, latency percentiles, retries and throughput as charts.

import * as api from "./api.js";
import { barChart, lineChart, rateBar } from "./charts.js";
import { h, message, replace } from "./dom.js";
import { clock, count, duration, percent } from "./format.js";
import { poll } from "./poll.js";

const MINUTE = 60_000;
const MAX_MINUTES = 180;
const PERCENTILES = [
  { key: "p50", name: "p50", cls: "s1" },
  { key: "p95", name: "p95", cls: "s2" },
  { key: "p99", name: "p99", cls: "s3" },
];

function table(columns, rows) {
  return h(
    "table",
    { class: "grid metrics" },
    h("thead", {}, h("tr", {}, columns.map(([label, , cls]) => h("th", { class: cls || "" }, label)))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h("tr", {}, columns.map(([, cell, cls]) => h("td", { class: cls || "" }, cell(row)))),
      ),
    ),
  );
}

const rate = (row) => h("span", { class: "rate" }, rateBar(row.successRate), ` ${percent(row.successRate)}`);
const latency = (key) => (row) => duration(row.latencyMs?.[key]);

function latencyChart(id, title, rows, label) {
  return barChart({
    id,
    title,
    categories: rows.map(label),
    series: PERCENTILES.map((p) => ({ ...p, values: rows.map((r) => r.latencyMs?.[p.key] ?? null) })),
    format: duration,
  });
}

function workflowSection(rows) {
  if (!rows.length) return h("p", { class: "empty" }, "No workflow has run yet.");
  return [
    table(
      [
        ["Workflow", (r) => r.name, "mono"],
        ["Started", (r) => count(r.started), "num"],
        ["Completed", (r) => count(r.completed), "num"],
        ["Failed", (r) => count(r.failed), "num"],
        ["Terminated", (r) => count(r.terminated), "num"],
        ["Running", (r) => count(r.running), "num"],
        ["Success rate", rate],
        ["p50", latency("p50"), "num"],
        ["p95", latency("p95"), "num"],
        ["p99", latency("p99"), "num"],
      ],
      rows,
    ),
    h(
      "div",
      { class: "charts" },
      latencyChart("workflow-latency", "Latency by workflow", rows, (r) => r.name),
    ),
  ];
}

function outcomesChart(rows) {
  const series = (name, cls, key) => ({ name, cls, values: rows.map((r) => r[key] ?? 0) });
  return barChart({
    id: "task-outcomes",
    title: "Outcomes and retries by task type",
    categories: rows.map((r) => r.taskType),
    series: [
      series("completed", "s-good", "completed"),
      series("failed", "s-bad", "failed"),
      series("timed out", "s-warn", "timedOut"),
      series("retries", "s3", "retries"),
    ],
    format: count,
    integer: true,
  });
}

function taskSection(rows) {
  if (!rows.length) return h("p", { class: "empty" }, "No task has run yet.");
  return [
    table(
      [
        ["Task type", (r) => r.taskType, "mono"],
        ["Completed", (r) => count(r.completed), "num"],
        ["Failed", (r) => count(r.failed), "num"],
        ["Timed out", (r) => count(r.timedOut), "num"],
        ["Retries", (r) => count(r.retries), "num"],
        ["Success rate", rate],
        ["p50", latency("p50"), "num"],
        ["p95", latency("p95"), "num"],
        ["p99", latency("p99"), "num"],
      ],
      rows,
    ),
    h(
      "div",
      { class: "charts" },
      latencyChart("task-latency", "Latency by task type", rows, (r) => r.taskType),
      outcomesChart(rows),
    ),
  ];
}

/** Every minute from the first to the last point (at most MAX_MINUTES), zero where none. */
function everyMinute(points) {
  const byMinute = new Map(points.map((p) => [p.minute, p]));
  const last = Math.max(...byMinute.keys());
  const first = Math.max(Math.min(...byMinute.keys()), last - (MAX_MINUTES - 1) * MINUTE);
  const out = [];
  for (let m = first; m <= last; m += MINUTE) {
    out.push(byMinute.get(m) ?? { minute: m, tasksCompleted: 0, workflowsCompleted: 0 });
  }
  return out;
}

function throughputSection(points) {
  if (!points.length) return h("p", { class: "empty" }, "Nothing completed yet.");
  const sorted = everyMinute(points);
  return lineChart({
    id: "throughput",
    title: "Completions per minute",
    xs: sorted.map((p) => p.minute),
    series: [
      { name: "tasks completed / min", cls: "s1", values: sorted.map((p) => p.tasksCompleted) },
      { name: "workflows completed / min", cls: "s-good", values: sorted.map((p) => p.workflowsCompleted) },
    ],
    format: count,
    formatX: clock,
    integer: true,
  });
}

/** Mounts the metrics page into ``view``; returns its unmount function. */
export function mount(view) {
  const note = h("p", { class: "message", hidden: true });
  const throughput = h("section", { class: "card" }, h("h2", {}, "Throughput"));
  const workflows = h("section", { class: "card" }, h("h2", {}, "Workflows"));
  const tasks = h("section", { class: "card" }, h("h2", {}, "Tasks"));
  const refresh = async () => {
    let summary;
    try {
      summary = await api.metrics();
    } catch (exc) {
      message(note, "error", `Could not load metrics: ${exc.message}`);
      return;
    }
    message(note, "info", "");
    replace(throughput, h("h2", {}, "Throughput"), throughputSection(summary.throughput || []));
    replace(workflows, h("h2", {}, "Workflows"), workflowSection(summary.workflows || []));
    replace(tasks, h("h2", {}, "Tasks"), taskSection(summary.tasks || []));
  };
  replace(view, h("div", { class: "page-head" }, h("h1", {}, "Metrics")), note, throughput, workflows, tasks);
  return poll(refresh, 10000);
}
