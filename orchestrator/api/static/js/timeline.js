// A workflow's history: a Gantt chart of its tasks and the list of its events.

import { h, s } from "./dom.js";
import { duration, time, truncate } from "./format.js";
import { taskRef } from "./graph.js";
import { jsonView } from "./json.js";
import { statusClass, taskActive, taskStatus } from "./status.js";

const WIDTH = 760;
const LABEL_W = 190;
const ROW_H = 22;
const AXIS_H = 22;
const SHOWN_FIELDS = ["seq", "type", "at", "workflowId", "workflow_id"];
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const TICK_STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 30 * SECOND,
  MINUTE, 5 * MINUTE, 10 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 6 * HOUR, 24 * HOUR,
];

function eventKind(type) {
  if (/Fail|TimedOut|Rejected|Terminated|Timeout/.test(type)) return "bad";
  if (/Completed|Skipped|Resumed/.test(type)) return "good";
  if (/Scheduled|Dispatched|InProgress|Started|Iterated|Reopened/.test(type)) return "active";
  return "neutral";
}

/** "ref", or "ref #2" for a loop body's task. */
function label(task) {
  const { base, iterations } = taskRef(task);
  return iterations.length ? `${base} #${iterations.join(".")}` : base;
}

function pick(event, ...keys) {
  for (const key of keys) if (event[key] !== undefined && event[key] !== null) return event[key];
  return undefined;
}

/** The words that say what one event was about: its task, attempt, reason, status. */
function summary(event, refOf) {
  const taskId = pick(event, "taskId", "task_id");
  const ref = refOf.get(taskId) ?? pick(event, "refName", "ref_name", "taskRef", "task_ref");
  const parts = [];
  if (ref) parts.push(ref);
  else if (taskId) parts.push(taskId);
  const type = pick(event, "taskType", "task_type");
  if (type) parts.push(type);
  const attempt = pick(event, "attempt");
  if (attempt > 1) parts.push(`attempt ${attempt}`);
  const status = pick(event, "status", "terminationStatus");
  if (status) parts.push(String(status));
  const reason = pick(event, "reason");
  if (reason) parts.push(`“${truncate(reason, 120)}”`);
  if (event.retrying) parts.push("retrying");
  return parts.join(" · ");
}

function ticks(span) {
  const step = TICK_STEPS.find((st) => span / st <= 6) ?? span / 5;
  const out = [];
  for (let t = 0; t <= span; t += step) out.push(t);
  return out;
}

/** A Gantt chart of ``tasks`` between the workflow's start and end (or now). */
export function gantt(tasks, startTime, endTime) {
  const sorted = (tasks || [])
    .filter((t) => t.scheduledTime)
    .toSorted((a, b) => a.scheduledTime - b.scheduledTime);
  if (!sorted.length) return h("p", { class: "empty" }, "No tasks yet.");
  const now = Date.now();
  const t0 = Math.min(startTime ?? sorted[0].scheduledTime, sorted[0].scheduledTime);
  const ends = sorted.map((t) => (taskActive(t.status) ? now : t.updateTime ?? t.scheduledTime));
  const t1 = Math.max(endTime ?? now, ...ends, t0 + 1);
  const span = t1 - t0;
  const plotW = WIDTH - LABEL_W - 12;
  const xOf = (t) => LABEL_W + ((t - t0) / span) * plotW;
  const height = AXIS_H + sorted.length * ROW_H + 6;
  const axis = ticks(span).map((t) =>
    s(
      "g",
      { class: "tick" },
      s("line", { x1: xOf(t0 + t), x2: xOf(t0 + t), y1: AXIS_H - 4, y2: height }),
      s("text", { x: xOf(t0 + t), y: AXIS_H - 8 }, `+${duration(t)}`),
    ),
  );
  const rows = sorted.map((task, i) => {
    const y = AXIS_H + i * ROW_H;
    const x = xOf(task.scheduledTime);
    const w = Math.max(2, xOf(ends[i]) - x);
    const text = label(task);
    return s(
      "g",
      { class: `bar ${statusClass(taskStatus(task))}`, "data-task-id": task.taskId },
      s("title", {}, `${text} · ${taskStatus(task)} · ${duration(ends[i] - task.scheduledTime)}`),
      s("text", { class: "row-label", x: LABEL_W - 8, y: y + ROW_H / 2 + 4 }, truncate(text, 26)),
      s("rect", { x, y: y + 4, width: w, height: ROW_H - 8, rx: 3 }),
    );
  });
  const svg = s("svg", { class: "gantt", viewBox: `0 0 ${WIDTH} ${height}`, role: "img" }, axis, rows);
  svg.setAttribute("aria-label", "task timeline");
  return svg;
}

/** The event list of a workflow's history, oldest first, each event expandable to its JSON. */
export function eventList(events, tasks) {
  const refOf = new Map((tasks || []).map((t) => [t.taskId, label(t)]));
  const first = events[0]?.at;
  const rows = events.map((event) => {
    const extra = Object.fromEntries(Object.entries(event).filter(([k]) => !SHOWN_FIELDS.includes(k)));
    return h(
      "li",
      { class: `event ${eventKind(event.type)}`, "data-type": event.type },
      h("span", { class: "seq" }, `#${event.seq}`),
      h("span", { class: "offset", title: time(event.at) }, `+${duration(event.at - first)}`),
      h("span", { class: "type" }, event.type),
      h("span", { class: "what" }, summary(event, refOf)),
      Object.keys(extra).length ? jsonView(extra) : null,
    );
  });
  if (!rows.length) return h("p", { class: "empty" }, "No events.");
  return h("ol", { class: "events" }, rows);
}
