// The HTTP API of the orchestrator: one function per endpoint, errors as ApiError.

const TOKEN_KEY = "orchestrator.token";

/** A request the API refused (status 4xx/5xx) or could not answer (status 0). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The bearer token kept in localStorage, or "". */
export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

/** Keeps ``value`` as the bearer token (an empty value forgets it). */
export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

/** FastAPI's ``detail`` (a string, or a list of validation errors) as one readable line. */
export function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        if (typeof item !== "object" || item === null) return String(item);
        const where = Array.isArray(item.loc) ? item.loc.filter((p) => p !== "body").join(".") : "";
        return where ? `${where}: ${item.msg}` : String(item.msg ?? JSON.stringify(item));
      })
      .join("; ");
  }
  return detail === undefined ? "" : JSON.stringify(detail);
}

async function errorOf(response) {
  let text = "";
  try {
    const body = await response.json();
    text = describeDetail(body?.detail ?? body);
  } catch {
    text = response.statusText;
  }
  const error = new ApiError(response.status, `${response.status}: ${text || response.statusText}`);
  if (response.status === 401 || response.status === 403) {
    window.dispatchEvent(new CustomEvent("auth-error", { detail: error }));
  }
  return error;
}

/** Sends one request; resolves to the JSON body (or null), rejects with ApiError. */
export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token()) headers.Authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (exc) {
    throw new ApiError(0, `cannot reach the API: ${exc.message}`);
  }
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function query(params) {
  const kept = Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined);
  return kept.length ? `?${new URLSearchParams(kept)}` : "";
}

const enc = encodeURIComponent;

/** GET /v1/status: readiness, whether auth is on, the processor's lag. */
export const status = () => request("GET", "/v1/status");

/** Every registered workflow definition (all versions). */
export const definitions = () => request("GET", "/v1/metadata/workflows");

/** One page of workflow summaries matching ``params`` ({total, results}). */
export const workflows = (params) => request("GET", `/v1/workflows${query(params)}`);

/** One workflow with its definition snapshot and tasks. */
export const workflow = (id) => request("GET", `/v1/workflows/${enc(id)}`);

/** One workflow's events ({events}). */
export const history = (id) => request("GET", `/v1/workflows/${enc(id)}/history`);

/** Starts a workflow: {name, version, input, correlationId} -> {workflowId}. */
export const start = (body) => request("POST", "/v1/workflows", body);

/** A lifecycle operation (terminate, pause, resume, retry, restart, rerun, skip, signal). */
export const lifecycle = (id, op, body) =>
  request("POST", `/v1/workflows/${enc(id)}/${enc(op)}`, body ?? {});

/** Waiting HUMAN tasks, filtered by assignee and group ({results}). */
export const humanTasks = (params) => request("GET", `/v1/human-tasks${query(params)}`);

/** Completes (or fails) a waiting HUMAN task. */
export const completeHumanTask = (workflowId, taskRef, body) =>
  request("POST", `/v1/human-tasks/${enc(workflowId)}/${enc(taskRef)}/complete`, body);

/** Per workflow name and task type counts, latencies and throughput. */
export const metrics = () => request("GET", "/v1/metrics/summary");
