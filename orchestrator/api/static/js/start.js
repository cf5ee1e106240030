// The "Start workflow" form: a registered definition, a version, a correlation id, JSON input.

import * as api from "./api.js";
import { h, message, replace } from "./dom.js";
import { parseTyped } from "./json.js";

function inputTemplate(def) {
  const keys = def?.inputParameters || [];
  return JSON.stringify(Object.fromEntries(keys.map((key) => [key, null])), null, 2);
}

/**
 * The start form and the button that shows it: {toggle, panel}. The definitions are read
 * each time the form opens; a started workflow is announced with a link to its page.
 */
export function startPanel() {
  let byName = new Map();
  const name = h("select", { name: "definition", required: true });
  const version = h("select", { name: "version" });
  const correlation = h("input", { name: "correlationId", placeholder: "optional" });
  const input = h("textarea", { name: "input", rows: 6, spellcheck: false }, "{}");
  const note = h("p", { class: "message", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Start");

  const latest = (list) => list.reduce((a, b) => (b.version > a.version ? b : a));
  const chooseName = () => {
    const versions = (byName.get(name.value) || []).toSorted((a, b) => b.version - a.version);
    replace(
      version,
      h("option", { value: "" }, "latest"),
      versions.map((d) => h("option", { value: d.version }, `v${d.version}`)),
    );
    if (versions.length) input.value = inputTemplate(latest(versions));
  };
  name.addEventListener("change", chooseName);

  const onSubmit = async (event) => {
    event.preventDefault();
    let body;
    try {
      body = {
        name: name.value,
        version: version.value ? Number(version.value) : null,
        input: parseTyped(input.value, { field: "Input", fallback: {} }),
        correlationId: correlation.value.trim() || null,
      };
    } catch (exc) {
      message(note, "error", exc.message);
      return;
    }
    submit.disabled = true;
    try {
      const { workflowId } = await api.start(body);
      const href = `#/workflows/${encodeURIComponent(workflowId)}`;
      message(note, "ok", "Started ");
      note.append(h("a", { href, class: "mono", "data-started": workflowId }, workflowId));
    } catch (exc) {
      message(note, "error", `Not started: ${exc.message}`);
    } finally {
      submit.disabled = false;
    }
  };

  const field = (label, el) => h("label", { class: "field" }, h("span", {}, label), el);
  const panel = h(
    "form",
    { class: "card start-form", hidden: true, onsubmit: onSubmit },
    h("h2", {}, "Start workflow"),
    h(
      "div",
      { class: "row" },
      field("Definition", name),
      field("Version", version),
      field("Correlation id", correlation),
    ),
    field("Input (JSON object)", input),
    h("div", { class: "row" }, submit),
    note,
  );
  const toggle = h("button", { type: "button", class: "primary" }, "Start workflow…");
  const load = async () => {
    let defs;
    try {
      defs = await api.definitions();
    } catch (exc) {
      message(note, "error", `Could not load definitions: ${exc.message}`);
      return;
    }
    const chosen = name.value;
    byName = new Map();
    for (const def of defs) byName.set(def.name, [...(byName.get(def.name) || []), def]);
    const names = [...byName.keys()].sort();
    replace(name, names.map((n) => h("option", { value: n, selected: n === chosen }, n)));
    if (!names.length) message(note, "info", "No workflow definition is registered yet.");
    if (name.value !== chosen) chooseName();
  };
  toggle.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    toggle.textContent = panel.hidden ? "Start workflow…" : "Close";
    if (!panel.hidden) load();
  });

  return { toggle, panel };
}
