// The definition drawn as an SVG graph, each node coloured by the status of its latest task.

import { h, s } from "./dom.js";
import { truncate } from "./format.js";
import { layout } from "./layout.js";
import { statusClass, taskStatus } from "./status.js";

const PAD = 24;
const TERM_R = 9;
const GAP = 30;
const LEGEND = ["SCHEDULED", "IN_PROGRESS", "COMPLETED", "FAILED", "TIMED_OUT", "SKIPPED", "CANCELED"];

/** "ref__2__1" -> {base: "ref", iterations: [2, 1]} (DO_WHILE bodies suffix their refs). */
export function splitRef(ref) {
  const match = /^(.*?)((?:__\d+)+)$/.exec(ref || "");
  if (!match) return { base: ref || "", iterations: [] };
  return { base: match[1], iterations: match[2].split("__").filter(Boolean).map(Number) };
}

/** A task's definition reference name and loop iterations, read from its refName or taskId. */
export function taskRef(task) {
  const byRef = splitRef(task.refName);
  const iterations = byRef.iterations.length ? byRef.iterations : splitRef(task.taskId).iterations;
  return { base: byRef.base, iterations };
}

function compare(a, b) {
  const n = Math.max(a.iterations.length, b.iterations.length);
  for (let i = 0; i < n; i++) {
    const diff = (a.iterations[i] ?? 0) - (b.iterations[i] ?? 0);
    if (diff) return diff;
  }
  return (
    (a.task.attempt ?? 0) - (b.task.attempt ?? 0) ||
    (a.task.scheduledTime ?? 0) - (b.task.scheduledTime ?? 0)
  );
}

/**
 * The latest task of each definition reference name: Map(base ref -> {task, iterations}).
 * A loop body's tasks carry ``__<n>`` in their refName or taskId; the highest iteration wins,
 * then the highest attempt, then the latest scheduled.
 */
export function latestByRef(tasks) {
  const latest = new Map();
  for (const task of tasks || []) {
    const { base, iterations } = taskRef(task);
    const entry = { task, iterations };
    const current = latest.get(base);
    if (!current || compare(entry, current) >= 0) latest.set(base, entry);
  }
  return latest;
}

function selectedCase(lookup) {
  return (task) => {
    const state = lookup(task.taskReferenceName);
    if (!state || state.status !== "COMPLETED") return null;
    const out = state.output || {};
    const chosen = out.selectedCase ?? out.evaluationResult?.[0];
    return chosen === undefined || chosen === null ? null : String(chosen);
  };
}

function subtitle(def, entry) {
  let text = def?.type || "";
  if (def?.type === "SIMPLE" || !def?.type) text = def?.name || "SIMPLE";
  if (def?.type === "SUB_WORKFLOW") {
    const param = def.subWorkflowParam || {};
    const name = param.name || param.workflowDefinition?.name || "inline";
    text = `sub: ${name}${param.version ? ` v${param.version}` : ""}`;
  }
  if (entry?.iterations.length) text += ` · iter ${entry.iterations.at(-1)}`;
  if ((entry?.task.attempt ?? 1) > 1) text += ` · try ${entry.task.attempt}`;
  return text;
}

function shape(n) {
  const { x, y, w, h: ht } = n;
  switch (n.shape) {
    case "hex": {
      const corners = [
        [x + 14, y],
        [x + w - 14, y],
        [x + w, y + ht / 2],
        [x + w - 14, y + ht],
        [x + 14, y + ht],
        [x, y + ht / 2],
      ];
      return s("polygon", { class: "shape", points: corners.map((c) => c.join(",")).join(" ") });
    }
    case "pill":
      return s("rect", { class: "shape", x, y, width: w, height: ht, rx: ht / 2 });
    case "sub":
      return [
        s("rect", { class: "shape", x, y, width: w, height: ht, rx: 8 }),
        s("rect", { class: "inner", x: x + 4, y: y + 4, width: w - 8, height: ht - 8, rx: 5 }),
      ];
    default:
      return s("rect", { class: "shape", x, y, width: w, height: ht, rx: 8 });
  }
}

function drawNode(n, entry, onSelect) {
  const task = entry?.task;
  const status = taskStatus(task);
  const small = n.shape === "pill";
  const cx = n.x + n.w / 2;
  const title = n.ref ? `${n.ref} (${n.def.type})\n${status || "not reached"}` : n.def.type;
  const label = n.shape === "loop" ? `↻ ${n.ref}` : n.ref || n.def.type;
  const chars = Math.floor((n.w - 18) / 7);
  const sub = truncate(subtitle(n.def, entry), chars + 4);
  const g = s(
    "g",
    {
      class: `node ${n.ref ? (status ? statusClass(status) : "st-none") : "placeholder"} shape-${n.shape}`,
      "data-ref": n.ref || "",
      "data-type": n.def.type || "",
      "data-status": status || "NOT_REACHED",
      tabindex: n.ref ? 0 : undefined,
      role: n.ref ? "button" : undefined,
    },
    s("title", {}, title),
    shape(n),
    s("text", { class: "label", x: cx, y: n.y + (small ? 15 : 20) }, truncate(label, chars)),
    n.ref ? s("text", { class: "sub", x: cx, y: n.y + (small ? 27 : 36) }, sub) : null,
  );
  if (n.ref) {
    const select = () => onSelect?.(n.ref, task);
    g.addEventListener("click", select);
    g.addEventListener("keydown", (e) => (e.key === "Enter" ? select() : null));
  }
  return g;
}

function markers() {
  const shape = { viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7 };
  const arrow = (id) =>
    s("marker", { id, ...shape, orient: "auto-start-reverse" }, s("path", { d: "M0 0 L10 5 L0 10 z" }));
  return s("defs", {}, arrow("arrow"), arrow("arrow-taken"));
}

function arrowOf(edge) {
  if (!edge.arrow) return undefined;
  const taken = edge.cls.split(" ").includes("taken");
  return `url(#${taken ? "arrow-taken" : "arrow"})`;
}

/**
 * The SVG of ``definition`` (a Conductor WorkflowDef) for a run whose tasks are ``tasks``.
 * Nodes carry data-ref, data-type and data-status; ``onSelect(ref, task)`` hears clicks.
 */
export function renderGraph(definition, tasks, { workflowStatus, onSelect } = {}) {
  const index = latestByRef(tasks);
  const lookup = (ref) => index.get(ref)?.task;
  const top = PAD + 2 * TERM_R + GAP;
  const plan = layout(definition?.tasks || [], { lookup, selectedCase: selectedCase(lookup) }, PAD, top);
  const width = plan.w + 2 * PAD;
  const cx = width / 2;
  const endY = top + plan.h + GAP + TERM_R;
  const height = endY + TERM_R + PAD;
  return s(
    "svg",
    { class: "graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "graph" },
    markers(),
    plan.boxes.map((b) => s("rect", { class: b.cls, x: b.x, y: b.y, width: b.w, height: b.h, rx: 12 })),
    s("circle", { class: "terminal start", cx, cy: PAD + TERM_R, r: TERM_R }),
    s("path", { class: "edge", d: `M${cx} ${PAD + 2 * TERM_R} V${top}`, "marker-end": "url(#arrow)" }),
    s("path", { class: "edge", d: `M${cx} ${top + plan.h} V${endY - TERM_R}`, "marker-end": "url(#arrow)" }),
    s("circle", { class: `terminal end ${statusClass(workflowStatus)}`, cx, cy: endY, r: TERM_R }),
    plan.edges.map((e) => s("path", { class: e.cls, d: e.d, "marker-end": arrowOf(e) })),
    plan.dots.map((d) => s("circle", { class: "merge", cx: d.x, cy: d.y, r: 4 })),
    plan.labels.map((l) =>
      s("g", { class: l.cls }, s("text", { x: l.x, y: l.y }, l.text)),
    ),
    plan.nodes.map((n) => drawNode(n, n.ref ? index.get(n.ref) : undefined, onSelect)),
  );
}

/** The colour key of the graph. */
export function legend() {
  return h(
    "div",
    { class: "legend" },
    h("span", { class: "chip st-none" }, "not reached"),
    LEGEND.map((st) => h("span", { class: `chip ${statusClass(st)}` }, st.replaceAll("_", " "))),
  );
}
