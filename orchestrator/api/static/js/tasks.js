// The task table of a workflow: one row per task, expandable to its input and output.

import { h } from "./dom.js";
import { duration, time } from "./format.js";
import { taskRef } from "./graph.js";
import { jsonView } from "./json.js";
import { badge, taskActive, taskStatus } from "./status.js";

function childLink(task, workflowId) {
  const out = task.output || {};
  let child = out.subWorkflowId ?? task.subWorkflowId;
  if (!child && task.taskType === "START_WORKFLOW") child = out.workflowId;
  if (!child && task.taskType === "SUB_WORKFLOW" && task.status !== "SCHEDULED") {
    child = `${workflowId}.${task.taskId}.${task.attempt}`;
  }
  if (!child) return null;
  return h("a", { href: `#/workflows/${encodeURIComponent(child)}`, class: "mono" }, "child workflow ↗");
}

function detailRow(task, workflowId) {
  return h(
    "tr",
    { class: "task-detail", "data-task-id": task.taskId },
    h(
      "td",
      { colspan: 8 },
      h(
        "div",
        { class: "io" },
        h("div", {}, h("h4", {}, "Input"), jsonView(task.input, { open: true })),
        h("div", {}, h("h4", {}, "Output"), jsonView(task.output, { open: true })),
      ),
      h(
        "p",
        { class: "muted small" },
        `task id ${task.taskId} · updated ${time(task.updateTime)}`,
        task.workerId ? ` · worker ${task.workerId}` : "",
        " ",
        childLink(task, workflowId),
      ),
    ),
  );
}

/**
 * The table of ``tasks`` in schedule order; ``open`` is the Set of task ids shown expanded,
 * kept by the caller so a refresh keeps what the reader opened.
 */
export function taskTable(tasks, open, workflowId) {
  const sorted = (tasks || []).toSorted((a, b) => (a.scheduledTime ?? 0) - (b.scheduledTime ?? 0));
  const body = h("tbody");
  for (const task of sorted) {
    const ref = taskRef(task);
    const { iterations } = ref;
    const end = taskActive(task.status) ? Date.now() : task.updateTime;
    const detail = detailRow(task, workflowId);
    detail.hidden = !open.has(task.taskId);
    const row = h(
      "tr",
      {
        class: `task-row${open.has(task.taskId) ? " open" : ""}`,
        "data-task-id": task.taskId,
        "data-ref": ref.base,
        tabindex: 0,
      },
      h("td", { class: "toggle" }, "▸"),
      h(
        "td",
        { class: "mono" },
        ref.base,
        iterations.length ? h("span", { class: "muted" }, ` #${iterations.join(".")}`) : null,
      ),
      h("td", {}, task.taskType),
      h("td", {}, badge(taskStatus(task))),
      h("td", { class: "num" }, task.attempt ?? ""),
      h("td", { class: "nowrap" }, time(task.scheduledTime)),
      h("td", { class: "num nowrap" }, task.scheduledTime ? duration(end - task.scheduledTime) : "—"),
      h("td", { class: "reason" }, task.reason || ""),
    );
    const toggle = () => {
      detail.hidden = !detail.hidden;
      row.classList.toggle("open", !detail.hidden);
      if (detail.hidden) open.delete(task.taskId);
      else open.add(task.taskId);
    };
    row.addEventListener("click", (e) => (e.target.closest("a") ? null : toggle()));
    row.addEventListener("keydown", (e) => (e.key === "Enter" ? toggle() : null));
    body.append(row, detail);
  }
  if (!sorted.length) body.append(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No tasks yet.")));
  const head = ["", "Reference", "Type", "Status", "Attempt", "Scheduled", "Duration", "Reason"];
  const thead = h("thead", {}, h("tr", {}, head.map((t) => h("th", {}, t))));
  return h("table", { class: "grid tasks" }, thead, body);
}

/** Expands and scrolls to the latest row of reference name ``ref`` in ``table``. */
export function revealTask(table, open, ref) {
  const rows = [...table.querySelectorAll(`tr.task-row[data-ref="${CSS.escape(ref)}"]`)];
  const row = rows.at(-1);
  if (!row) return false;
  if (!open.has(row.dataset.taskId)) row.click();
  row.scrollIntoView({ block: "center", behavior: "smooth" });
  row.classList.add("flash");
  setTimeout(() => row.classList.remove("flash"), 1200);
  return true;
}
