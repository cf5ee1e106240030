// The shell: hash routing between pages, the health line, authentication banner and token.

import * as api from "./api.js";
import * as detail from "./detail.js";
import { h, replace } from "./dom.js";
import * as inbox from "./inbox.js";
import * as list from "./list.js";
import * as metrics from "./metrics.js";
import { poll } from "./poll.js";

const view = document.getElementById("view");
const authError = document.getElementById("auth-error");
let unmount = null;

/** Mounts the page the hash names: #/workflows, #/workflows/<id>, #/inbox, #/metrics. */
function route() {
  if (!location.hash) {
    history.replaceState(null, "", "#/workflows");
  }
  const [path, qs] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(qs || "");
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "workflows";
  unmount?.();
  unmount = null;
  view.replaceChildren();
  authError.hidden = true;
  if (page === "workflows" && parts.length > 1) {
    unmount = detail.mount(view, decodeURIComponent(parts.slice(1).join("/")));
  } else if (page === "workflows") {
    unmount = list.mount(view, params);
  } else if (page === "inbox") {
    unmount = inbox.mount(view, params);
  } else if (page === "metrics") {
    unmount = metrics.mount(view);
  } else {
    replace(view, h("p", { class: "empty" }, `No page at ${location.hash}.`));
  }
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === page);
  }
}

async function refreshHealth() {
  const health = document.getElementById("health");
  try {
    const st = await api.status();
    document.getElementById("auth-banner").hidden = st.authEnabled !== false;
    document.getElementById("token-form").hidden = st.authEnabled === false;
    const lag = st.lag?.records ?? 0;
    health.className = `health ${st.ready ? "ok" : "warn"}`;
    health.textContent = st.ready ? `● live · lag ${lag}` : `● catching up · lag ${lag}`;
    const delay = st.lag?.applyDelayMs ?? st.lag?.lastEventAgeMs;
    health.title = `records behind: ${lag}; apply delay ${delay == null ? "—" : `${delay} ms`}`;
  } catch (exc) {
    health.className = "health error";
    health.textContent = "● API unreachable";
    health.title = exc.message;
  }
}

function setUpToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  input.value = api.token();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    api.setToken(input.value.trim());
    route();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    input.value = "";
    api.setToken("");
    route();
  });
  window.addEventListener("auth-error", (event) => {
    const hint = api.token()
      ? "the API refused the token; enter another one above"
      : "this API needs a bearer token; enter it above";
    authError.textContent = `${event.detail.message} — ${hint}`;
    authError.hidden = false;
  });
}

setUpToken();
window.addEventListener("hashchange", route);
route();
poll(refreshHealth, 10000);
