// Over 250 lines: the connection part of the page (general fields, actions, advanced settings) and its rendering.
// The connection setup page. It talks only to the public API; the function key is kept in sessionStorage
// (this tab only) and sent as x-functions-key. No framework: a few render functions over the API's views.

import { $, ApiError, api, companyPath, keyStore, say, state } from "./page-core.js";
import { loadSyncViews, renderLastTest, startSyncViews } from "./sync-views.js";

const fieldNames = [
  "serverAddress",
  "authenticationType",
  "userName",
  "password",
  "clientId",
  "clientSecret",
  "certificatePem",
  "tenantId",
  "redirectUri",
  "homeRealmUri",
];
const secretFields = { password: "hasPassword", clientSecret: "hasClientSecret", certificatePem: "hasCertificate" };
// Which fields each authentication type uses (data-for groups in the page).
const groupsByType = {
  "": ["user", "app", "secret", "certificate", "oauth", "domain", "ifd"],
  Office365: ["user"],
  OAuth: ["user", "oauth"],
  ClientSecret: ["app", "secret"],
  Certificate: ["app", "certificate"],
  AD: ["user", "domain"],
  IFD: ["user", "domain", "ifd"],
};

function clearErrors() {
  for (const element of document.querySelectorAll(".error")) element.textContent = "";
  for (const element of document.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
}

/** A problem's field errors next to their fields; the rest in the status line. The first bad field gets focus. */
function showProblem(error, fallbackTarget = "error-body") {
  if (!(error instanceof ApiError)) {
    say(`Something went wrong: ${error.message}`);
    return;
  }
  const errors = error.problem.errors ?? [];
  let first;
  const unplaced = [];
  for (const { path, message } of errors) {
    const name = path.split(".")[0];
    const slot = $(`error-${name}`);
    const input = $(name === "connectionString" ? "connectionStringInput" : name);
    if (slot) {
      slot.textContent = message;
      input?.setAttribute("aria-invalid", "true");
      first ??= input;
    } else {
      unplaced.push(`${path}: ${message}`);
    }
  }
  if (errors.length === 0 || unplaced.length > 0) {
    const target = $(fallbackTarget) ?? $("error-body");
    target.textContent = [error.problem.detail ?? error.message, ...unplaced].join(" ");
  }
  say(error.problem.title ? `${error.problem.title} ${error.problem.detail ?? ""}` : error.message);
  first?.focus();
}

function showResult(kind, title, lines = []) {
  const box = $("result");
  box.hidden = false;
  box.className = `result ${kind}`;
  box.replaceChildren();
  const heading = document.createElement("p");
  heading.textContent = title;
  box.append(heading);
  if (lines.length > 0) {
    const list = document.createElement("ul");
    for (const line of lines) {
      const item = document.createElement("li");
      item.textContent = line;
      list.append(item);
    }
    box.append(list);
  }
  box.focus();
}

/** Questions from the API (prompts) as confirm dialogs; a yes runs the prompt's follow-up call. */
async function answerPrompts(prompts = []) {
  for (const prompt of prompts) {
    const yes = window.confirm(prompt.message);
    if (!yes) continue;
    if (prompt.id === "enable-encryption") {
      say("To keep credentials in Azure Key Vault, set KEY_VAULT_URL for the function app and save the setup again with its secrets.");
      continue;
    }
    const href = prompt.action.href.replace(/^\/api\//, "");
    const answer = await api(prompt.action.method, href, prompt.action.body);
    if (answer?.message) say(answer.message);
  }
}

function applyTypeVisibility() {
  const type = $("authenticationType").value;
  const groups = groupsByType[type] ?? groupsByType[""];
  for (const field of document.querySelectorAll("[data-for]")) {
    field.hidden = !field.dataset.for.split(" ").some((group) => groups.includes(group));
  }
}

function renderView(view) {
  state.view = view;
  $("workspace").hidden = false;
  $("serverAddress").value = view?.serverAddress ?? "";
  $("authenticationType").value = view?.authenticationType ?? "";
  $("userName").value = view?.userName ?? "";
  $("domain").value = view?.domain ?? "";
  $("clientId").value = view?.clientId ?? "";
  $("tenantId").value = view?.tenantId ?? "";
  $("redirectUri").value = view?.redirectUri ?? "";
  $("homeRealmUri").value = view?.homeRealmUri ?? "";
  for (const [field, flag] of Object.entries(secretFields)) {
    $(field).value = "";
    $(`${field}-state`).textContent = view?.[flag] ? "Stored. Leave empty to keep it." : "Not set.";
  }
  $("connectionStringInput").value = "";
  $("connectionString").value = view?.connectionString ?? "";
  $("connectionString").textContent = view?.connectionString ?? "";
  const enabled = view?.isEnabled === true;
  $("general-fields").disabled = enabled;
  $("enabled-note").hidden = !enabled;
  $("enable").disabled = !view || enabled;
  $("disable").disabled = !view || !enabled;
  $("test").disabled = !view;
  $("default-sync").disabled = !view;
  $("reset-url").disabled = !view;
  const jobs = view?.activeScheduledSyncJobs;
  $("active-jobs").textContent = jobs?.text ?? "0 of 0";
  $("active-jobs-message").textContent = jobs?.message ?? "";
  $("solution").textContent = view ? (view.integrationSolutionImported ? "Yes" : "No") : "";
  $("erpWebUrl").value = view?.erpWebUrl ?? "";
  $("version").textContent = view?.crmVersion ? `${view.crmVersion}${view.crmVersionSupported === false ? " (not supported)" : ""}` : "";
  for (const name of ["connectionUserIsIntegrationUser", "salesOrderIntegrationEnabled", "autoCreateSalesOrders", "usersMustMapToCrmUsers"]) {
    $(name).checked = view?.[name] === true;
    $(name).disabled = !view;
  }
  $("disable-reason").textContent = view?.disableReason ?? "";
  $("secret-store").textContent = view
    ? `${view.secretStore.kind === "key-vault" ? "Azure Key Vault" : "Local development store"}${view.secretStore.encrypted ? " (encrypted)" : ""}`
    : "";
  applyTypeVisibility();
  const notices = view?.notices ?? [];
  if (notices.length > 0)
    showResult(
      "info",
      "Notices",
      notices.map((notice) => notice.message),
    );
}

async function loadCompanies() {
  try {
    const { value } = await api("GET", "companies");
    $("companies").replaceChildren(
      ...value.map((entry) =>
        Object.assign(document.createElement("option"), { value: entry.company, label: `${entry.company}${entry.isEnabled ? " (enabled)" : ""}` }),
      ),
    );
  } catch {
    // no key yet, or no access: the picker stays a plain text field
  }
}

async function openCompany(company) {
  clearErrors();
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(company)) {
    $("error-company").textContent = "Use a lowercase slug: a-z, 0-9 and -, starting with a letter or digit.";
    $("company").setAttribute("aria-invalid", "true");
    $("company").focus();
    return;
  }
  state.company = company;
  $("result").hidden = true;
  try {
    renderView(await api("GET", companyPath("/connection")));
    say(`Company ${company} opened.`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      renderView(undefined);
      say(`Company ${company} has no connection yet. Fill in the fields and save.`);
    } else {
      showProblem(error, "error-company");
      return;
    }
  }
  await loadSyncViews();
}

function formBody() {
  const body = {};
  const text = $("connectionStringInput").value.trim();
  if (text) body.connectionString = text;
  for (const name of fieldNames) {
    const element = $(name);
    if (element.closest("[data-for]")?.hidden) continue;
    const value = element.value.trim();
    if (value === "") continue;
    if (text && !(name in secretFields)) continue;
    body[name] = name === "certificatePem" ? element.value : value;
  }
  return body;
}

async function save(event) {
  event.preventDefault();
  clearErrors();
  try {
    const view = await api("PUT", companyPath("/connection"), formBody());
    renderView(view);
    say("The connection setup was saved.");
    await loadCompanies();
  } catch (error) {
    showProblem(error);
  }
}

async function testConnection() {
  clearErrors();
  try {
    const result = await api("POST", companyPath("/connection/test"));
    const details = result.details
      ? [`Version: ${result.details.crmVersion}`, `User ID: ${result.details.userId}`, `Organization ID: ${result.details.organizationId}`]
      : [];
    showResult(result.ok ? "ok" : "failed", result.message, [...(result.warnings ?? []), ...details]);
    say(result.message);
    await renderLastTest();
    await answerPrompts(result.prompts);
  } catch (error) {
    showProblem(error);
  }
}

async function enable() {
  clearErrors();
  try {
    const view = await api("POST", companyPath("/connection/enable"), {});
    await answerPrompts(view.prompts);
    renderView(await api("GET", companyPath("/connection")));
    showResult(
      "ok",
      "The connection is enabled.",
      (view.notices ?? []).map((notice) => notice.message),
    );
    say("The connection is enabled.");
    await loadSyncViews();
  } catch (error) {
    if (error instanceof ApiError && error.problem.test) {
      showResult("failed", error.problem.detail);
      say(error.problem.detail);
    } else {
      showProblem(error);
    }
  }
}

async function disable() {
  try {
    renderView(await api("POST", companyPath("/connection/disable"), {}));
    say("The connection is disabled. Its synchronization jobs are on hold.");
    await loadSyncViews();
  } catch (error) {
    showProblem(error);
  }
}

async function defaultSync() {
  try {
    let result;
    try {
      result = await api("POST", companyPath("/sync/default-setup"), {});
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409) throw error;
      if (!window.confirm(error.problem.detail)) return;
      result = await api("POST", companyPath("/sync/default-setup"), { confirm: true });
    }
    say(result.message);
    renderView(await api("GET", companyPath("/connection")));
    await loadSyncViews();
  } catch (error) {
    showProblem(error);
  }
}

async function resetUrl() {
  try {
    const view = await api("POST", companyPath("/connection/settings/reset-erp-web-url"));
    renderView(view);
    say(view.message);
  } catch (error) {
    showProblem(error);
  }
}

async function changeSetting(name, value, control) {
  clearErrors();
  try {
    const view = await api("PATCH", companyPath("/connection/settings"), { [name]: value });
    renderView(view);
    say((view.notices ?? []).map((notice) => notice.message).join(" ") || "The setting was saved.");
    // Sales order settings add or remove job entries and the orders view.
    if (name === "salesOrderIntegrationEnabled" || name === "autoCreateSalesOrders") await loadSyncViews();
  } catch (error) {
    if (control?.type === "checkbox") control.checked = !value;
    showProblem(error, `error-${name}`);
    if (!$(`error-${name}`)) showResult("failed", error.message);
  }
}

function start() {
  $("function-key").value = sessionStorage.getItem(keyStore) ?? "";
  $("function-key").addEventListener("change", (event) => {
    sessionStorage.setItem(keyStore, event.target.value.trim());
    loadCompanies();
  });
  $("access").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(keyStore, $("function-key").value.trim());
    openCompany($("company").value.trim());
  });
  $("general").addEventListener("submit", save);
  $("authenticationType").addEventListener("change", applyTypeVisibility);
  $("test").addEventListener("click", testConnection);
  $("enable").addEventListener("click", enable);
  $("disable").addEventListener("click", disable);
  $("default-sync").addEventListener("click", defaultSync);
  $("reset-url").addEventListener("click", resetUrl);
  $("save-url").addEventListener("click", () => changeSetting("erpWebUrl", $("erpWebUrl").value.trim() || null));
  for (const name of ["connectionUserIsIntegrationUser", "salesOrderIntegrationEnabled", "autoCreateSalesOrders", "usersMustMapToCrmUsers"]) {
    $(name).addEventListener("change", (event) => changeSetting(name, event.target.checked, event.target));
  }
  startSyncViews();
  loadCompanies();
  const fromUrl = new URLSearchParams(location.search).get("company");
  if (fromUrl) {
    $("company").value = fromUrl;
    openCompany(fromUrl);
  }
}

start();
