// Statuses: which are terminal, and the badge that shows one (colours live in app.css).

import { h } from "./dom.js";

export const WORKFLOW_STATUSES = [
  "RUNNING",
  "PAUSED",
  "COMPENSATING",
  "COMPLETED",
  "FAILED",
  "TIMED_OUT",
  "TERMINATED",
  "COMPENSATION_FAILED",
];

const ACTIVE_WORKFLOW = new Set(["RUNNING", "PAUSED", "COMPENSATING"]);
const ACTIVE_TASK = new Set(["SCHEDULED", "IN_PROGRESS"]);

/** Whether a workflow in ``status`` can still change by itself (unknown statuses are not). */
export function workflowActive(status) {
  return ACTIVE_WORKFLOW.has(status);
}

/** Whether a task in ``status`` is waiting or running. */
export function taskActive(status) {
  return ACTIVE_TASK.has(status);
}

const SIGNALLED = new Set(["HUMAN", "WAIT"]);

/**
 * The status a task shows. A HUMAN or WAIT task the engine keeps SCHEDULED while it waits for
 * its signal reads IN_PROGRESS, as in Conductor: nothing else has to happen before it can end.
 */
export function taskStatus(task) {
  if (task?.status === "SCHEDULED" && SIGNALLED.has(task.taskType)) return "IN_PROGRESS";
  return task?.status;
}

/** The CSS class of a status: "st-COMPLETED", or "st-unknown" for a status the UI does not know. */
export function statusClass(status) {
  return /^[A-Z_]+$/.test(status || "") ? `st-${status}` : "st-unknown";
}

/** A badge element for ``status``. */
export function badge(status) {
  const label = status ? String(status).replaceAll("_", " ") : "unknown";
  return h("span", { class: `badge ${statusClass(status)}`, "data-status": status || "" }, label);
}
