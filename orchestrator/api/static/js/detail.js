// One workflow: header, lifecycle actions, the graph, and tabs for tasks, events and data.

import { actionBar } from "./actions.js";
import * as api from "./api.js";
import { h, message, replace } from "./dom.js";
import { duration, time } from "./format.js";
import { legend, renderGraph } from "./graph.js";
import { jsonView } from "./json.js";
import { poll } from "./poll.js";
import { badge, workflowActive } from "./status.js";
import { revealTask, taskTable } from "./tasks.js";
import { eventList, gantt } from "./timeline.js";

const TABS = ["Tasks", "Timeline", "Data", "Definition"];
const LIVE_AFTER_ACTION_MS = 20000;
let chosenTab = "Tasks";

function header(wf) {
  const end = wf.endTime ?? null;
  const fact = (label, value, cls = "") =>
    h("div", { class: "fact" }, h("dt", {}, label), h("dd", { class: cls }, value));
  const parent = wf.parentWorkflowId ?? wf.parent?.workflowId ?? wf.parent?.workflow_id;
  const link = (id) => id && h("a", { href: `#/workflows/${encodeURIComponent(id)}` }, id);
  return [
    h(
      "div",
      { class: "title-row" },
      h("h1", {}, wf.name, h("span", { class: "muted" }, ` v${wf.version}`)),
      badge(wf.status),
    ),
    h(
      "dl",
      { class: "facts" },
      fact("Workflow id", wf.workflowId, "mono"),
      fact("Correlation id", wf.correlationId || "—", "mono"),
      fact("Started", time(wf.startTime)),
      fact("Updated", time(wf.updateTime)),
      fact("Ended", time(end)),
      fact("Duration", duration((end ?? Date.now()) - wf.startTime)),
      parent ? fact("Parent", link(parent), "mono") : null,
      wf.continuedFrom ? fact("Continues", link(wf.continuedFrom), "mono") : null,
      wf.continuedAs ? fact("Continued as", link(wf.continuedAs), "mono") : null,
      wf.reason ? fact("Reason", wf.reason, "reason") : null,
    ),
  ];
}

function signature(wf) {
  const tasks = (wf.tasks || []).map((t) => `${t.taskId}:${t.status}:${t.attempt}:${t.updateTime}`);
  return `${wf.status}|${wf.updateTime}|${wf.endTime}|${tasks.join(",")}`;
}

/** Mounts the page of workflow ``id`` into ``view``; returns its unmount function. */
export function mount(view, id) {
  const open = new Set();
  let wf = null;
  let seen = "";
  let liveUntil = 0;
  let historyCount = -1;

  const head = h("section", { class: "card head" }, h("p", { class: "muted" }, `Loading ${id}…`));
  const note = h("p", { class: "message", hidden: true });
  const graph = h("div", { class: "graph-scroll fit" });
  const zoom = h("button", { type: "button", class: "ghost", title: "fit or full size" }, "Actual size");
  zoom.addEventListener("click", () => {
    const fit = graph.classList.toggle("fit");
    zoom.textContent = fit ? "Actual size" : "Fit";
  });
  const panes = Object.fromEntries(TABS.map((t) => [t, h("div", { class: "pane", "data-pane": t })]));
  const tabButtons = TABS.map((t) =>
    h("button", { type: "button", class: "tab", "data-tab": t, onclick: () => show(t) }, t),
  );
  const show = (tab) => {
    chosenTab = tab;
    for (const b of tabButtons) b.classList.toggle("active", b.dataset.tab === tab);
    for (const [t, pane] of Object.entries(panes)) pane.hidden = t !== tab;
  };
  const actions = actionBar(id, {
    current: () => wf,
    onDone: () => {
      liveUntil = Date.now() + LIVE_AFTER_ACTION_MS;
      setTimeout(refresh, 300);
    },
  });

  const onSelect = (ref) => {
    show("Tasks");
    const table = panes.Tasks.querySelector("table");
    if (table) revealTask(table, open, ref);
  };

  const render = () => {
    replace(head, header(wf));
    replace(graph, renderGraph(wf.definition, wf.tasks, { workflowStatus: wf.status, onSelect }));
    replace(panes.Tasks, taskTable(wf.tasks, open, wf.workflowId));
    replace(
      panes.Data,
      h("h4", {}, "Input"),
      jsonView(wf.input, { open: true }),
      h("h4", {}, "Output"),
      jsonView(wf.output, { open: true }),
      h("h4", {}, "Variables"),
      jsonView(wf.variables, { open: true }),
    );
    if (!panes.Definition.childElementCount) {
      replace(panes.Definition, jsonView(wf.definition, { open: true }));
    }
  };

  const refreshHistory = async () => {
    const { events } = await api.history(id);
    if (events.length === historyCount) return;
    historyCount = events.length;
    replace(
      panes.Timeline,
      h("h4", {}, "Tasks over time"),
      gantt(wf.tasks, wf.startTime, wf.endTime),
      h("h4", {}, `Events (${events.length})`),
      eventList(events, wf.tasks),
    );
  };

  async function refresh() {
    if (wf && !workflowActive(wf.status) && Date.now() > liveUntil) return;
    try {
      wf = await api.workflow(id);
    } catch (exc) {
      if (exc.status === 404 && !wf) message(note, "info", `Workflow ${id} is not known (yet); retrying…`);
      else message(note, "error", exc.message);
      return;
    }
    message(note, "info", "");
    const now = signature(wf);
    if (now === seen) return;
    seen = now;
    render();
    try {
      await refreshHistory();
    } catch (exc) {
      message(note, "error", `Could not load the history: ${exc.message}`);
    }
  }

  replace(
    view,
    head,
    note,
    actions,
    h(
      "div",
      { class: "detail-grid" },
      h(
        "section",
        { class: "card graph-card" },
        h("div", { class: "card-head" }, h("h2", {}, "Graph"), zoom),
        graph,
        legend(),
      ),
      h(
        "section",
        { class: "card tabs-card" },
        h("div", { class: "tabs", role: "tablist" }, tabButtons),
        Object.values(panes),
      ),
    ),
  );
  show(chosenTab);
  return poll(refresh, 2000);
}
