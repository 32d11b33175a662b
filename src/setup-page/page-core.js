// What every view of the setup page shares: element lookup, the API client, the open company, the status line.

export const $ = (id) => document.getElementById(id);
export const keyStore = "d365-connector.function-key";

/** The open company and its connection view (undefined when it has none yet). */
export const state = { company: "", view: undefined };

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }
}

/** Calls the API with the function key of this tab; answers the JSON body, or the whole answer when asked. */
export async function api(method, path, body, options = {}) {
  const headers = { accept: "application/json", ...options.headers };
  const key = sessionStorage.getItem(keyStore);
  if (key) headers["x-functions-key"] = key;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`/api/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!response.ok) throw new ApiError(response.status, data);
  return options.withHeaders ? { data, headers: response.headers } : data;
}

export const companyPath = (suffix = "") => `companies/${encodeURIComponent(state.company)}${suffix}`;

export function say(message) {
  $("status").textContent = message;
}

/** A button with a visible label and, when the label alone is ambiguous in a table, a fuller accessible name. */
export function button(label, onClick, accessibleName) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  if (accessibleName) element.setAttribute("aria-label", accessibleName);
  element.addEventListener("click", onClick);
  return element;
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

/**
 * Field errors of a problem next to their fields in a form: the slot of path "fields.2.constant" in form
 * "mapping" is #error-mapping-fields-2-constant. Errors without a slot go to the form's own error slot.
 * Answers whether the error was a problem with field errors.
 */
export function showFormProblem(error, form) {
  for (const slot of document.querySelectorAll(`[id^="error-${form}-"]`)) slot.textContent = "";
  for (const input of document.querySelectorAll(`[data-form="${form}"][aria-invalid]`)) input.removeAttribute("aria-invalid");
  const general = $(`error-${form}`);
  if (general) general.textContent = "";
  if (!(error instanceof ApiError)) {
    if (general) general.textContent = error.message;
    return;
  }
  let first;
  const unplaced = [];
  for (const { path, message } of error.problem.errors ?? []) {
    const key = path.replace(/\./g, "-");
    const slot = $(`error-${form}-${key}`);
    const input = $(`${form}-${key}`);
    if (slot) {
      slot.textContent = message;
      input?.setAttribute("aria-invalid", "true");
      first ??= input ?? slot;
    } else unplaced.push(`${path}: ${message}`);
  }
  if (general && (unplaced.length > 0 || (error.problem.errors ?? []).length === 0))
    general.textContent = [error.problem.detail ?? error.message, ...unplaced].join(" ");
  say(error.problem.detail ?? error.message);
  (first ?? general)?.focus?.();
}
