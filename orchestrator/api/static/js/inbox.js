// The human-task inbox: waiting HUMAN tasks filtered by assignee and group, each with
// approve, reject, and complete-with-output buttons.

import * as api from "./api.js";
import { h, message, replace } from "./dom.js";
import { duration, time } from "./format.js";
import { jsonView, parseTyped } from "./json.js";
import { poll } from "./poll.js";

const SHOW_DONE_MS = 3000;
const HIDE_DONE_MS = 30000;

/** A due date as given in the task input: epoch ms, or text shown as it is. */
const due = (value) => (typeof value === "number" ? time(value) : String(value));

const keyOf = (task) => `${task.workflowId}/${task.taskId}`;

function card(task, done) {
  const note = h("p", { class: "message", hidden: true, role: "status" });
  const output = h("textarea", { rows: 4, spellcheck: false, placeholder: '{"comment": "…"}' });
  const custom = h(
    "div",
    { class: "custom", hidden: true },
    h("label", { class: "field" }, h("span", {}, "Output (JSON object)"), output),
  );
  const buttons = [];
  const el = h("article", {
    class: "card human-task",
    "data-ref": task.refName,
    "data-task-id": task.taskId,
    "data-workflow-id": task.workflowId,
  });

  const submit = async (label, out) => {
    for (const b of buttons) b.disabled = true;
    try {
      const body = { status: "COMPLETED", output: out, reason: null };
      await api.completeHumanTask(task.workflowId, task.taskId, body);
      done.set(keyOf(task), Date.now());
      message(note, "ok", `${label} — sent.`);
      el.classList.add("done");
    } catch (exc) {
      message(note, "error", `${label} failed — ${exc.message}`);
      for (const b of buttons) b.disabled = false;
    }
  };
  const completeWithOutput = () => {
    if (custom.hidden) {
      custom.hidden = false;
      output.focus();
      return;
    }
    try {
      submit("Completed", parseTyped(output.value, { field: "Output", fallback: {} }));
    } catch (exc) {
      message(note, "error", exc.message);
    }
  };
  const button = (action, cls, label, onclick) =>
    h("button", { type: "button", class: cls, "data-action": action, onclick }, label);
  buttons.push(
    button("approve", "primary", "Approve", () => submit("Approved", { approved: true })),
    button("reject", "danger", "Reject", () => submit("Rejected", { approved: false })),
    button("complete", "", "Complete with output…", completeWithOutput),
  );
  const href = `#/workflows/${encodeURIComponent(task.workflowId)}`;
  replace(
    el,
    h(
      "header",
      {},
      h("h3", {}, task.refName),
      h("a", { href, class: "muted" }, `${task.workflowName} · `, h("code", {}, task.workflowId)),
    ),
    h(
      "p",
      { class: "chips" },
      h("span", { class: "chip" }, `assignee: ${task.assignee ?? "—"}`),
      h("span", { class: "chip" }, `group: ${task.group ?? "—"}`),
      task.dueAt ? h("span", { class: "chip" }, `due: ${due(task.dueAt)}`) : null,
      task.escalationLevel
        ? h("span", { class: "chip" }, `escalated ×${task.escalationLevel}`)
        : null,
      h(
        "span",
        { class: "muted", title: time(task.scheduledTime) },
        `waiting for ${duration(Date.now() - task.scheduledTime)}`,
      ),
    ),
    jsonView(task.input, { label: "input", open: true }),
    custom,
    h("div", { class: "row" }, buttons),
    note,
  );
  return el;
}

/** Mounts the inbox into ``view`` (filters from ``params``); returns its unmount function. */
export function mount(view, params) {
  const filters = { assignee: params.get("assignee") || "", group: params.get("group") || "" };
  const done = new Map();
  const cards = new Map();
  const empty = h("p", { class: "empty", hidden: true }, "No human task is waiting.");
  const list = h("div", { class: "inbox" });
  const note = h("p", { class: "message", hidden: true });
  const assignee = h("input", { name: "assignee", value: filters.assignee, placeholder: "any" });
  const group = h("input", { name: "group", value: filters.group, placeholder: "any" });
  let generation = 0;

  const refresh = async () => {
    const mine = ++generation;
    let results;
    try {
      ({ results } = await api.humanTasks(filters));
    } catch (exc) {
      if (mine === generation) message(note, "error", `Could not load the inbox: ${exc.message}`);
      return;
    }
    if (mine !== generation) return;
    message(note, "info", "");
    const now = Date.now();
    const listed = new Set(results.map(keyOf));
    for (const [key, el] of cards) {
      // An answered card stays a moment (or until the read model drops it), then goes.
      const age = now - (done.get(key) ?? now);
      const gone = !listed.has(key);
      const stale = done.has(key) ? (gone && age > SHOW_DONE_MS) || age > HIDE_DONE_MS : gone;
      if (stale) {
        el.remove();
        cards.delete(key);
      }
    }
    for (const task of results) {
      const key = keyOf(task);
      if (cards.has(key) || now - (done.get(key) ?? -Infinity) < HIDE_DONE_MS) continue;
      cards.set(key, card(task, done));
      list.append(cards.get(key));
    }
    empty.hidden = cards.size > 0;
  };

  const apply = (event) => {
    event.preventDefault();
    filters.assignee = assignee.value.trim();
    filters.group = group.value.trim();
    const qs = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
    history.replaceState(null, "", `#/inbox${qs ? `?${qs}` : ""}`);
    cards.clear();
    list.replaceChildren();
    refresh();
  };
  const field = (label, el) => h("label", { class: "field" }, h("span", {}, label), el);
  replace(
    view,
    h("div", { class: "page-head" }, h("h1", {}, "Inbox")),
    h(
      "form",
      { class: "filters", onsubmit: apply },
      field("Assignee", assignee),
      field("Group", group),
      h("div", { class: "filter-buttons" }, h("button", { type: "submit" }, "Filter")),
    ),
    note,
    empty,
    list,
  );
  return poll(refresh, 3000);
}
