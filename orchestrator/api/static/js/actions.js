// Lifecycle operations on one workflow: a button each, a small form where the operation
// takes arguments, and the API's answer (or its refusal) shown under the buttons.

import * as api from "./api.js";
import { h, message, replace } from "./dom.js";
import { splitRef } from "./graph.js";
import { parseTyped } from "./json.js";

const OPERATIONS = [
  { op: "terminate", label: "Terminate", cls: "danger", fields: ["reason"] },
  { op: "pause", label: "Pause", fields: ["reason"] },
  { op: "resume", label: "Resume", fields: [] },
  { op: "retry", label: "Retry", fields: [] },
  { op: "restart", label: "Restart…", fields: ["useLatestDefinition"] },
  { op: "rerun", label: "Rerun from task…", fields: ["fromTask", "taskInput"] },
  { op: "skip", label: "Skip task…", fields: ["taskRef", "output"] },
  { op: "signal", label: "Signal task…", fields: ["taskRef", "status", "output", "signalReason"] },
];

function refsOf(workflow) {
  const refs = new Set();
  const visit = (list) => {
    for (const t of list || []) {
      refs.add(t.taskReferenceName);
      visit(t.loopOver);
      visit(t.defaultCase);
      for (const arm of t.forkTasks || []) visit(arm);
      for (const arm of Object.values(t.decisionCases || {})) visit(arm);
    }
  };
  visit(workflow?.definition?.tasks);
  for (const task of workflow?.tasks || []) refs.add(splitRef(task.refName).base);
  return [...refs].filter(Boolean).sort();
}

function input(field, workflow) {
  const listId = "action-refs";
  switch (field) {
    case "reason":
    case "signalReason":
      return h("input", { name: field, placeholder: "reason (optional)" });
    case "useLatestDefinition":
      return h("input", { name: field, type: "checkbox" });
    case "fromTask":
    case "taskRef":
      return [
        h("input", { name: field, list: listId, required: true, placeholder: "task reference name or id" }),
        h("datalist", { id: listId }, refsOf(workflow).map((ref) => h("option", { value: ref }))),
      ];
    case "status":
      return h("select", { name: field }, h("option", {}, "COMPLETED"), h("option", {}, "FAILED"));
    default:
      return h("textarea", { name: field, rows: 3, spellcheck: false, placeholder: "{} (optional)" });
  }
}

const LABELS = {
  reason: "Reason",
  signalReason: "Reason",
  useLatestDefinition: "Use the latest definition",
  fromTask: "From task",
  taskRef: "Task",
  taskInput: "Task input (JSON)",
  output: "Output (JSON)",
  status: "Status",
};

function bodyOf(op, form) {
  const value = (name) => form.elements[name]?.value?.trim() ?? "";
  switch (op) {
    case "terminate":
    case "pause":
      return { reason: value("reason") || `${op}d from the UI` };
    case "restart":
      return { useLatestDefinition: form.elements.useLatestDefinition.checked };
    case "rerun":
      return {
        fromTask: value("fromTask"),
        taskInput: parseTyped(value("taskInput"), { field: "Task input" }),
      };
    case "skip":
      return { taskRef: value("taskRef"), output: parseTyped(value("output"), { field: "Output" }) };
    case "signal":
      return {
        taskRef: value("taskRef"),
        status: value("status"),
        output: parseTyped(value("output"), { field: "Output", fallback: {} }),
        reason: value("signalReason") || null,
      };
    default:
      return {};
  }
}

/**
 * The action bar of a workflow. ``current()`` gives the latest workflow JSON (for task names),
 * ``onDone(op)`` runs after the API accepted an operation.
 */
export function actionBar(workflowId, { current, onDone }) {
  const note = h("p", { class: "message", hidden: true, role: "status" });
  const panel = h("div", { class: "action-form" });
  const buttons = [];

  const send = async (spec, body) => {
    for (const b of buttons) b.disabled = true;
    try {
      await api.lifecycle(workflowId, spec.op, body);
      message(note, "ok", `Requested ${spec.op}.`);
      replace(panel);
      onDone?.(spec.op);
    } catch (exc) {
      message(note, "error", `${spec.label.replace("…", "")} rejected — ${exc.message}`);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  };

  const open = (spec) => {
    message(note, "info", "");
    if (!spec.fields.length) {
      send(spec, {});
      return;
    }
    const form = h(
      "form",
      { class: "card inline-form", "data-op": spec.op },
      spec.fields.map((f) => h("label", { class: "field" }, h("span", {}, LABELS[f]), input(f, current()))),
      h(
        "div",
        { class: "row" },
        h("button", { type: "submit", class: spec.cls || "primary" }, `Confirm ${spec.op}`),
        h("button", { type: "button", class: "ghost", onclick: () => replace(panel) }, "Cancel"),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      try {
        send(spec, bodyOf(spec.op, form));
      } catch (exc) {
        message(note, "error", exc.message);
      }
    });
    replace(panel, form);
    form.querySelector("input, textarea, select")?.focus();
  };

  for (const spec of OPERATIONS) {
    const attrs = { type: "button", class: spec.cls || "", "data-op": spec.op };
    buttons.push(h("button", { ...attrs, onclick: () => open(spec) }, spec.label));
  }
  return h("div", { class: "actions" }, h("div", { class: "buttons" }, buttons), panel, note);
}
