// The workflow list: filters kept in the hash, paging, a live table, and the start form.

import * as api from "./api.js";
import { h, message, replace } from "./dom.js";
import { duration, time } from "./format.js";
import { poll } from "./poll.js";
import { startPanel } from "./start.js";
import { WORKFLOW_STATUSES, badge } from "./status.js";

const FILTERS = ["name", "status", "correlationId", "startedAfter", "startedBefore", "q"];
const PAGE_SIZES = [20, 50, 100];

function localInput(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function readState(params) {
  const state = { offset: 0, limit: 20, sort: "startTime:desc" };
  for (const key of FILTERS) state[key] = params.get(key) || "";
  state.offset = Math.max(0, Number(params.get("offset")) || 0);
  state.limit = PAGE_SIZES.includes(Number(params.get("limit"))) ? Number(params.get("limit")) : 20;
  if (params.get("sort") === "startTime:asc") state.sort = "startTime:asc";
  return state;
}

function writeHash(state) {
  const kept = Object.entries(state).filter(([key, value]) => {
    if (key === "offset") return value > 0;
    if (key === "limit") return value !== 20;
    if (key === "sort") return value !== "startTime:desc";
    return value !== "";
  });
  const qs = new URLSearchParams(kept).toString();
  history.replaceState(null, "", `#/workflows${qs ? `?${qs}` : ""}`);
}

function filterForm(state, names, apply) {
  const field = (label, input) => h("label", { class: "field" }, h("span", {}, label), input);
  const name = h("input", { name: "name", list: "definition-names", value: state.name });
  const statusSelect = h(
    "select",
    { name: "status" },
    h("option", { value: "" }, "any"),
    WORKFLOW_STATUSES.map((st) => h("option", { value: st, selected: st === state.status }, st)),
  );
  const inputs = {
    name,
    status: statusSelect,
    correlationId: h("input", { name: "correlationId", value: state.correlationId }),
    startedAfter: h("input", { type: "datetime-local", value: localInput(state.startedAfter) }),
    startedBefore: h("input", { type: "datetime-local", value: localInput(state.startedBefore) }),
    q: h("input", { name: "q", type: "search", placeholder: "text in the input", value: state.q }),
  };
  const read = () => {
    for (const key of FILTERS) {
      const value = inputs[key].value.trim();
      state[key] = key.startsWith("started") && value ? String(new Date(value).getTime()) : value;
    }
    state.offset = 0;
    apply();
  };
  statusSelect.addEventListener("change", read);
  const form = h(
    "form",
    { class: "filters", onsubmit: (e) => (e.preventDefault(), read()) },
    field("Name", name),
    names,
    field("Status", statusSelect),
    field("Correlation id", inputs.correlationId),
    field("Started after", inputs.startedAfter),
    field("Started before", inputs.startedBefore),
    field("Search", inputs.q),
    h("div", { class: "filter-buttons" }, h("button", { type: "submit" }, "Filter")),
  );
  const clear = h("button", { type: "button", class: "ghost" }, "Clear");
  clear.addEventListener("click", () => {
    for (const input of Object.values(inputs)) input.value = "";
    read();
  });
  form.querySelector(".filter-buttons").append(clear);
  return form;
}

function row(wf) {
  const href = `#/workflows/${encodeURIComponent(wf.workflowId)}`;
  const end = wf.endTime ?? null;
  return h(
    "tr",
    { "data-workflow-id": wf.workflowId },
    h("td", {}, h("a", { href }, wf.name), h("span", { class: "muted" }, ` v${wf.version}`)),
    h("td", {}, h("a", { href, class: "mono" }, wf.workflowId)),
    h("td", {}, badge(wf.status)),
    h("td", { class: "mono" }, wf.correlationId || ""),
    h("td", { class: "nowrap" }, time(wf.startTime)),
    h("td", {}, end ? duration(end - wf.startTime) : h("span", { class: "muted" }, "running")),
    h("td", { class: "reason" }, wf.reason || ""),
  );
}

/** Mounts the list page into ``view``; returns its unmount function. */
export function mount(view, params) {
  const state = readState(params);
  const names = h("datalist", { id: "definition-names" });
  const note = h("p", { class: "message", hidden: true });
  const body = h("tbody");
  const pager = h("div", { class: "pager" });
  const sortHeader = h("th", { class: "sortable", title: "sort by start time" });
  let generation = 0;

  const refresh = async () => {
    const mine = ++generation;
    writeHash(state);
    sortHeader.textContent = `Started ${state.sort.endsWith("desc") ? "▼" : "▲"}`;
    const query = Object.fromEntries(Object.entries(state).filter(([, v]) => v !== ""));
    try {
      const page = await api.workflows(query);
      if (mine !== generation) return;
      message(note, "info", "");
      replace(body, page.results.map(row));
      if (!page.results.length) {
        body.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No workflows match.")));
      }
      renderPager(page.total);
    } catch (exc) {
      if (mine === generation) message(note, "error", `Could not load workflows: ${exc.message}`);
    }
  };

  const renderPager = (total) => {
    const pages = Math.max(1, Math.ceil(total / state.limit));
    const current = Math.floor(state.offset / state.limit) + 1;
    const go = (offset) => () => ((state.offset = offset), refresh());
    const size = h(
      "select",
      { "aria-label": "page size" },
      PAGE_SIZES.map((n) => h("option", { value: n, selected: n === state.limit }, `${n} / page`)),
    );
    size.addEventListener("change", () => {
      state.limit = Number(size.value);
      state.offset = 0;
      refresh();
    });
    const prev = go(state.offset - state.limit);
    const next = go(state.offset + state.limit);
    replace(
      pager,
      h("button", { class: "ghost", disabled: current <= 1, onclick: prev }, "‹ Prev"),
      h("span", {}, `Page ${current} of ${pages} · ${total} workflows`),
      h("button", { class: "ghost", disabled: current >= pages, onclick: next }, "Next ›"),
      size,
    );
  };

  sortHeader.addEventListener("click", () => {
    state.sort = state.sort === "startTime:desc" ? "startTime:asc" : "startTime:desc";
    refresh();
  });

  const start = startPanel();
  api
    .definitions()
    .then((defs) => {
      const unique = [...new Set(defs.map((d) => d.name))].sort();
      replace(names, unique.map((n) => h("option", { value: n })));
    })
    .catch(() => {}); // the name filter still takes free text

  replace(
    view,
    h("div", { class: "page-head" }, h("h1", {}, "Workflows"), start.toggle),
    start.panel,
    filterForm(state, names, refresh),
    note,
    h(
      "table",
      { class: "grid workflows" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Workflow", "Id", "Status", "Correlation id"].map((label) => h("th", {}, label)),
          sortHeader,
          h("th", {}, "Duration"),
          h("th", {}, "Reason"),
        ),
      ),
      body,
    ),
    pager,
  );
  return poll(refresh, 2000);
}
