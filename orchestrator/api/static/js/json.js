// JSON shown to people (collapsible, with a one-line preview) and JSON typed by them.

import { h } from "./dom.js";
import { truncate } from "./format.js";

/** A one-line preview of ``value``. */
export function preview(value, max = 80) {
  if (value === undefined) return "—";
  return truncate(JSON.stringify(value), max);
}

/**
 * A <details> block: the summary shows ``label`` and a preview, the body the indented JSON.
 * ``open`` starts it expanded; ``onToggle(open)`` reports the reader's choice.
 */
export function jsonView(value, { label = "", open = false, onToggle } = {}) {
  const empty = value === null || value === undefined;
  const body = h("pre", { class: "json" }, empty ? "null" : JSON.stringify(value, null, 2));
  const details = h(
    "details",
    { class: "json-view", open },
    h(
      "summary",
      {},
      label ? h("span", { class: "json-label" }, label) : null,
      h("code", { class: "json-preview" }, preview(value)),
    ),
    body,
  );
  if (onToggle) details.addEventListener("toggle", () => onToggle(details.open));
  return details;
}

/**
 * Parses JSON a person typed; an empty text is ``fallback``.
 * Throws an Error naming the field when the text is not JSON (or not an object when required).
 */
export function parseTyped(text, { field = "JSON", fallback = null, object = true } = {}) {
  if (!text || !text.trim()) return fallback;
  let value;
  try {
    value = JSON.parse(text);
  } catch (exc) {
    throw new Error(`${field} is not valid JSON: ${exc.message}`);
  }
  if (object && (typeof value !== "object" || value === null || Array.isArray(value))) {
    throw new Error(`${field} must be a JSON object`);
  }
  return value;
}
