// Over 250 lines: the page's synchronization views (jobs, mappings, couplings, issues, log) over one shared state.
// The synchronization views of the setup page: job queue entries, table and field mappings, coupled records,
// records not synchronized (conflicts, skipped, failed, deferred) and the log. They call the public API only.

import { $, ApiError, api, button, companyPath, say, showFormProblem, state, when } from "./page-core.js";
import { loadOrders, startOrders } from "./sales-orders.js";

const directionLabels = { both: "Bidirectional", toCrm: "To Dynamics 365 Sales", fromCrm: "From Dynamics 365 Sales" };
const sync = {
  mappings: [],
  editing: undefined,
  couplingToken: undefined,
  issuesToken: undefined,
  issuesRun: undefined,
  log: { tokens: [undefined], page: 0 },
};

/** Loads every synchronization view of the open company. */
export async function loadSyncViews() {
  await Promise.all([loadJobs(), loadMappings(), renderLastTest()]);
  await Promise.all([searchCouplings(), loadIssues(), loadLog(true), loadOrders()]);
}

export async function renderLastTest() {
  const line = $("last-test");
  line.textContent = "";
  if (!state.view) return;
  try {
    const { lastTest } = await api("GET", companyPath("/connection/status"));
    line.textContent = lastTest
      ? `Last test ${when(lastTest.at)}: ${lastTest.ok ? "succeeded" : "failed"}. ${lastTest.message}`
      : "The connection was not tested yet.";
  } catch {
    // the status is a courtesy line; the page works without it
  }
}

// ---------- job queue entries ----------

/** The actions an entry's state allows (none while the connection is disabled: the API would refuse them). */
function jobActions(job) {
  if (!state.view?.isEnabled) return [];
  if (job.status === "In Process") return job.requestedStatus === "On Hold" ? [["Ready", "ready"]] : [["Hold", "hold"]];
  if (job.status === "Ready")
    return [
      ["Hold", "hold"],
      ["Run now", "run"],
    ];
  return [
    ["Ready", "ready"],
    ["Run now", "run"],
  ]; // On Hold, Error
}

function jobStatusText(job) {
  if (job.status === "In Process" && job.progress) {
    const { phase, recordsDone, recordsTotal } = job.progress;
    // While the ERP feed is still being read the total is not known yet: the records done so far are.
    const records = recordsTotal !== undefined ? `, ${recordsDone} of ${recordsTotal} records` : recordsDone > 0 ? `, ${recordsDone} records done` : "";
    return `In Process: ${phase}${records}`;
  }
  if (job.requestedStatus) return `${job.status} (${job.requestedStatus} when this run ends)`;
  if (job.sleeping) return `${job.status} (sleeping: no changes for ${job.inactivityTimeoutMinutes} min)`;
  return job.status;
}

export async function loadJobs() {
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  $("jobs-count").textContent = "";
  $("jobs-note").hidden = !state.view || state.view.isEnabled;
  if (!state.view) return;
  try {
    const { value, activeScheduledSyncJobs } = await api("GET", companyPath("/sync/jobs"));
    $("jobs-count").textContent = `(${activeScheduledSyncJobs.text} ready or in process)`;
    for (const job of value) {
      const row = body.insertRow();
      row.dataset.job = job.id;
      row.insertCell().textContent = job.description;
      const status = row.insertCell();
      status.textContent = jobStatusText(job);
      status.className = `status-${job.status.replace(/\s/g, "-")}`;
      row.insertCell().textContent = `${job.minutesBetweenRuns} min`;
      row.insertCell().textContent = when(job.nextRunAt);
      row.insertCell().textContent = job.lastError ?? job.lastResult ?? "";
      const actions = row.insertCell();
      for (const [label, action] of jobActions(job)) {
        actions.append(
          button(
            label,
            async () => {
              try {
                await api("POST", companyPath(`/sync/jobs/${encodeURIComponent(job.id)}/${action}`));
                say(action === "run" ? `${job.id} was queued to run now.` : `${job.id} is ${action === "hold" ? "on hold" : "ready"}.`);
                await loadJobs();
              } catch (error) {
                say(error.message);
              }
            },
            `${label}: ${job.id}`,
          ),
        );
      }
    }
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) say(error.message);
  }
}

// ---------- table and field mappings ----------

async function loadMappings() {
  const body = $("mappings").tBodies[0];
  body.replaceChildren();
  sync.mappings = [];
  if (state.view) {
    try {
      sync.mappings = (await api("GET", companyPath("/sync/mappings"))).value;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) say(error.message);
    }
  }
  for (const select of document.querySelectorAll(".mapping-choice")) {
    const previous = select.value;
    const options = sync.mappings.map((mapping) => new Option(mapping.name, mapping.name));
    select.replaceChildren(...(select.dataset.any ? [new Option("Any", "")] : []), ...options);
    if ([...select.options].some((option) => option.value === previous)) select.value = previous;
  }
  for (const mapping of sync.mappings) {
    const row = body.insertRow();
    row.dataset.mapping = mapping.name;
    row.insertCell().textContent = mapping.name;
    row.insertCell().textContent = `${mapping.erpTable} / ${mapping.crmEntitySet}`;
    row.insertCell().textContent = directionLabels[mapping.direction];
    row.insertCell().textContent = mapping.updateConflictResolution;
    row.insertCell().textContent = mapping.deletionConflictResolution;
    row.insertCell().textContent = mapping.onlyCoupledRecords ? "Yes" : "No";
    row.insertCell().textContent = String(mapping.maxAttempts);
    row.insertCell().textContent = mapping.lastSyncAt ? `${when(mapping.lastSyncAt)}: ${mapping.lastSyncResult ?? ""}` : "";
    row.insertCell().append(button("Edit", () => editMapping(mapping.name), `Edit mapping ${mapping.name}`));
  }
}

function editMapping(name) {
  const mapping = sync.mappings.find((candidate) => candidate.name === name);
  if (!mapping) return;
  sync.editing = { name, etag: undefined };
  showFormProblem({ message: "" }, "mapping");
  $("mapping-form").hidden = false;
  $("mapping-form-heading").textContent = `Mapping ${name}: ${mapping.erpTable} and ${mapping.crmEntitySet}`;
  $("mapping-direction").value = mapping.direction;
  $("mapping-updateConflictResolution").value = mapping.updateConflictResolution;
  $("mapping-deletionConflictResolution").value = mapping.deletionConflictResolution;
  $("mapping-onlyCoupledRecords").checked = mapping.onlyCoupledRecords;
  $("mapping-maxAttempts").value = String(mapping.maxAttempts);
  $("mapping-crmFilter").value = mapping.crmFilter ?? "";
  const body = $("mapping-fields").tBodies[0];
  body.replaceChildren();
  // Create-only twins (a unit group's base unit name) follow their main field and are not listed.
  const fields = mapping.fields.filter((field) => !field.createOnly || !mapping.fields.some((other) => other !== field && other.erp === field.erp));
  fields.forEach((field, index) => {
    const row = body.insertRow();
    row.dataset.field = field.erp;
    row.insertCell().textContent = field.erp;
    row.insertCell().textContent = field.crm + (field.lookup ? ` (lookup to ${field.lookup.mapping})` : "");
    const id = `mapping-fields-${index}`;
    const enabled = Object.assign(document.createElement("input"), { type: "checkbox", id: `${id}-enabled`, checked: field.enabled !== false });
    enabled.dataset.form = "mapping";
    row.insertCell().append(hiddenLabel(enabled.id, `Enabled: ${field.erp}`), enabled);
    const direction = document.createElement("select");
    direction.id = `${id}-direction`;
    direction.dataset.form = "mapping";
    direction.append(...Object.entries(directionLabels).map(([value, label]) => new Option(label, value)));
    direction.value = field.direction;
    row.insertCell().append(hiddenLabel(direction.id, `Direction: ${field.erp}`), direction);
    const constant = Object.assign(document.createElement("input"), {
      type: "text",
      id: `${id}-constant`,
      value: field.constant === undefined ? "" : String(field.constant ?? ""),
    });
    constant.dataset.form = "mapping";
    constant.dataset.original = field.constant === undefined ? "" : String(field.constant ?? "");
    const error = Object.assign(document.createElement("span"), { className: "error" });
    error.id = `error-mapping-fields-${index}`;
    const errorConstant = Object.assign(document.createElement("span"), { className: "error", id: `error-mapping-fields-${index}-constant` });
    const errorDirection = Object.assign(document.createElement("span"), { className: "error", id: `error-mapping-fields-${index}-direction` });
    constant.setAttribute("aria-describedby", `${errorConstant.id} ${errorDirection.id}`);
    row.insertCell().append(hiddenLabel(constant.id, `Constant value: ${field.erp}`), constant, errorConstant, errorDirection, error);
  });
  sync.editing.fields = fields;
  $("mapping-form-heading").focus();
}

function hiddenLabel(target, text) {
  const label = Object.assign(document.createElement("label"), { className: "visually-hidden", textContent: text });
  label.htmlFor = target;
  return label;
}

/** Only what changed is sent: a field mapping row appears in "fields" when one of its settings changed. */
function mappingPatch(mapping) {
  const patch = {};
  for (const name of ["direction", "updateConflictResolution", "deletionConflictResolution"]) {
    if ($(`mapping-${name}`).value !== mapping[name]) patch[name] = $(`mapping-${name}`).value;
  }
  if ($("mapping-onlyCoupledRecords").checked !== mapping.onlyCoupledRecords) patch.onlyCoupledRecords = $("mapping-onlyCoupledRecords").checked;
  const attempts = $("mapping-maxAttempts").value.trim();
  if (attempts !== String(mapping.maxAttempts)) patch.maxAttempts = /^-?\d+$/.test(attempts) ? Number(attempts) : attempts;
  const filter = $("mapping-crmFilter").value.trim();
  if (filter !== (mapping.crmFilter ?? "")) patch.crmFilter = filter === "" ? null : filter;
  const fields = [];
  sync.editing.fields.forEach((field, index) => {
    const change = { erp: field.erp };
    const enabled = $(`mapping-fields-${index}-enabled`).checked;
    if (enabled !== (field.enabled !== false)) change.enabled = enabled;
    const direction = $(`mapping-fields-${index}-direction`).value;
    if (direction !== field.direction) change.direction = direction;
    const constantInput = $(`mapping-fields-${index}-constant`);
    if (constantInput.value !== constantInput.dataset.original) {
      if (constantInput.value === "") change.removeConstant = true;
      else change.constant = constantInput.value;
    }
    if (Object.keys(change).length > 1) fields.push(change);
  });
  // Errors name "fields.N": N is the position in what is sent, so the slots are renumbered to match.
  sync.editing.sentIndexes = fields.map((change) => sync.editing.fields.findIndex((field) => field.erp === change.erp));
  if (fields.length > 0) patch.fields = fields;
  return patch;
}

async function saveMapping(event) {
  event.preventDefault();
  const { name } = sync.editing ?? {};
  const mapping = sync.mappings.find((candidate) => candidate.name === name);
  if (!mapping) return;
  const patch = mappingPatch(mapping);
  if (Object.keys(patch).length === 0) {
    say("Nothing was changed.");
    return;
  }
  try {
    const saved = await api("PATCH", companyPath(`/sync/mappings/${encodeURIComponent(name)}`), patch);
    $("mapping-form").hidden = true;
    say(`The ${name} mapping was saved.`);
    await loadMappings();
    $("mappings")
      .querySelector(`tr[data-mapping="${CSS.escape(saved.name)}"] button`)
      ?.focus();
  } catch (error) {
    if (error instanceof ApiError) {
      // fields.K (K-th sent) -> the row it came from.
      for (const fieldError of error.problem.errors ?? []) {
        const match = /^fields\.(\d+)(\..*)?$/.exec(fieldError.path);
        if (match) fieldError.path = `fields.${sync.editing.sentIndexes[Number(match[1])] ?? match[1]}${match[2] ?? ""}`;
      }
    }
    showFormProblem(error, "mapping");
  }
}

// ---------- coupled records ----------

async function searchCouplings(more = false) {
  const body = $("couplings").tBodies[0];
  if (!more) {
    body.replaceChildren();
    sync.couplingToken = undefined;
  }
  $("couplings-more").hidden = true;
  if (!state.view) return;
  const query = new URLSearchParams({ top: "25" });
  for (const name of ["mapping", "erpId", "crmId", "status"]) {
    const value = $(`coupling-${name}`).value.trim();
    if (value) query.set(name, value);
  }
  if (more && sync.couplingToken) query.set("continuationToken", sync.couplingToken);
  try {
    const page = await api("GET", companyPath(`/sync/couplings?${query}`));
    $("error-coupling").textContent = "";
    for (const coupling of page.value) addCouplingRow(body, coupling);
    if (!more && page.value.length === 0) body.insertRow().insertCell().textContent = "No coupled records match.";
    sync.couplingToken = page.continuationToken;
    $("couplings-more").hidden = !page.continuationToken;
  } catch (error) {
    showFormProblem(error, "coupling");
  }
}

function addCouplingRow(body, coupling) {
  const row = body.insertRow();
  row.dataset.erpId = coupling.erpId;
  row.insertCell().textContent = coupling.mapping;
  row.insertCell().textContent = coupling.erpId;
  row.insertCell().textContent = coupling.crmId;
  row.insertCell().textContent = coupling.status;
  row.insertCell().textContent = coupling.reason ?? "";
  const actions = row.insertCell();
  const path = `/sync/couplings/${encodeURIComponent(coupling.mapping)}/${encodeURIComponent(coupling.erpId)}`;
  const label = `${coupling.mapping} ${coupling.erpId}`;
  actions.append(
    button(
      "Synchronize",
      async () => {
        try {
          const result = await api("POST", companyPath(`${path}/synchronize`), {});
          say(`${label} was synchronized: ${result.log.map((log) => log.message).join(" ")}`);
          await searchCouplings();
        } catch (error) {
          say(error.message);
        }
      },
      `Synchronize ${label}`,
    ),
    " ",
    button(
      "Uncouple",
      async () => {
        try {
          await api("DELETE", companyPath(path));
          say(`${label} was uncoupled from ${coupling.crmId}.`);
          $("couple-mapping").value = coupling.mapping;
          $("couple-erpId").value = coupling.erpId;
          await searchCouplings();
        } catch (error) {
          say(error.message);
        }
      },
      `Uncouple ${label}`,
    ),
  );
}

async function coupleByHand(event) {
  event.preventDefault();
  const mapping = $("couple-mapping").value;
  const erpId = $("couple-erpId").value.trim();
  if (!erpId) {
    showFormProblem(new ApiError(400, { detail: "Enter the ERP no.", errors: [{ path: "erpId", message: "is required" }] }), "couple");
    return;
  }
  try {
    const coupling = await api("PUT", companyPath(`/sync/couplings/${encodeURIComponent(mapping)}/${encodeURIComponent(erpId)}`), {
      crmId: $("couple-crmId").value.trim(),
    });
    showFormProblem({ message: "" }, "couple");
    say(`${mapping} ${erpId} is coupled to ${coupling.crmId}. Synchronize it to align the values.`);
    $("coupling-mapping").value = mapping;
    $("coupling-erpId").value = erpId;
    await searchCouplings();
  } catch (error) {
    showFormProblem(error, "couple");
  }
}

async function matchRecords(event) {
  event.preventDefault();
  const mapping = $("match-mapping").value;
  const fields = $("match-fields")
    .value.split(",")
    .map((field) => field.trim())
    .filter(Boolean);
  try {
    const result = await api("POST", companyPath(`/sync/mappings/${encodeURIComponent(mapping)}/match`), {
      fields,
      createIfNoMatch: $("match-createIfNoMatch").checked,
    });
    showFormProblem({ message: "" }, "match");
    const text = `Coupled ${result.coupled}, created ${result.created}, ambiguous ${result.ambiguous.length}, without a match ${result.unmatched.length}.`;
    $("match-result").textContent = text;
    say(text);
    await searchCouplings();
  } catch (error) {
    showFormProblem(error, "match");
  }
}

// ---------- records not synchronized ----------

async function loadIssues(more = false) {
  const body = $("issues").tBodies[0];
  if (!more) {
    body.replaceChildren();
    sync.issuesToken = undefined;
  }
  $("issues-more").hidden = true;
  if (!state.view) return;
  const query = new URLSearchParams({ top: "25" });
  if ($("issues-kind").value) query.set("kind", $("issues-kind").value);
  if ($("issues-mapping").value) query.set("mapping", $("issues-mapping").value);
  if (sync.issuesRun) query.set("runId", sync.issuesRun);
  $("issues-run").textContent = sync.issuesRun ? `Records of run ${sync.issuesRun}` : "";
  if (more && sync.issuesToken) query.set("continuationToken", sync.issuesToken);
  try {
    const page = await api("GET", companyPath(`/sync/issues?${query}`));
    for (const issue of page.value) addIssueRow(body, issue);
    if (!more && page.value.length === 0) body.insertRow().insertCell().textContent = "Every record is synchronized.";
    sync.issuesToken = page.continuationToken;
    $("issues-more").hidden = !page.continuationToken;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) say(error.message);
  }
}

function addIssueRow(body, issue) {
  const row = body.insertRow();
  row.dataset.issue = issue.id;
  row.insertCell().textContent = issue.mapping;
  row.insertCell().textContent = issue.kind;
  row.insertCell().textContent = issue.erpId ?? "";
  row.insertCell().textContent = issue.crmId ?? "";
  const reason = row.insertCell();
  reason.textContent = issue.reason;
  if (issue.conflicts) {
    const list = document.createElement("ul");
    for (const conflict of issue.conflicts) {
      list.append(
        Object.assign(document.createElement("li"), {
          textContent:
            `${conflict.erpField}: ERP "${conflict.erpValue ?? ""}", Dynamics 365 "${conflict.crmValue ?? ""}" (was ` + `"${conflict.syncedValue ?? ""}")`,
        }),
      );
    }
    reason.append(list);
  }
  row.insertCell().textContent = String(issue.attempts);
  row.insertCell().textContent = when(issue.lastAt);
  const actions = row.insertCell();
  const label = `${issue.mapping} ${issue.erpId ?? issue.crmId ?? ""}`;
  const act = (path, body, done) => async () => {
    try {
      await api("POST", companyPath(path), body);
      say(done);
      await Promise.all([loadIssues(), searchCouplings()]);
    } catch (error) {
      say(error.message);
    }
  };
  if (issue.kind === "conflict") {
    const path = `/sync/conflicts/${encodeURIComponent(issue.id)}/resolve`;
    actions.append(
      button("Keep ERP values", act(path, { keep: "erp" }, `${label}: the ERP values were kept.`), `Keep ERP values: ${label}`),
      " ",
      button("Keep Dynamics 365 values", act(path, { keep: "crm" }, `${label}: the Dynamics 365 values were kept.`), `Keep Dynamics 365 values: ${label}`),
    );
  }
  if (issue.kind === "skipped") {
    actions.append(
      button("Retry", act(`/sync/skipped/${encodeURIComponent(issue.id)}/retry`, undefined, `${label} was restored and synchronized.`), `Retry ${label}`),
    );
  }
}

// ---------- the log ----------

function logQuery() {
  const query = new URLSearchParams({ top: "25" });
  if ($("log-mapping").value) query.set("mapping", $("log-mapping").value);
  if ($("log-direction").value) query.set("direction", $("log-direction").value);
  for (const name of ["from", "to"]) {
    const value = $(`log-${name}`).value;
    // datetime-local is the admin's local time: sent as the UTC instant it stands for.
    if (value) query.set(name, Number.isNaN(Date.parse(value)) ? value : new Date(value).toISOString());
  }
  if ($("log-failedOnly").checked) query.set("failedOnly", "true");
  return query;
}

/** Pages back with the API's continuation tokens; the tokens of the pages seen are kept to go forward again. */
async function loadLog(reset = false, step = 0) {
  const body = $("log").tBodies[0];
  if (reset) sync.log = { tokens: [undefined], page: 0 };
  const page = Math.max(0, sync.log.page + step);
  body.replaceChildren();
  $("log-errors").hidden = true;
  if (!state.view) return;
  const query = logQuery();
  const token = sync.log.tokens[page];
  if (token) query.set("continuationToken", token);
  try {
    const { value, continuationToken } = await api("GET", companyPath(`/sync/log?${query}`));
    showFormProblem({ message: "" }, "log");
    sync.log.page = page;
    sync.log.tokens[page + 1] = continuationToken;
    sync.log.tokens.length = page + 2;
    for (const entry of value) addLogRow(body, entry);
    if (value.length === 0) body.insertRow().insertCell().textContent = "No runs match.";
    $("log-newest").disabled = page === 0;
    $("log-newer").disabled = page === 0;
    $("log-older").disabled = !continuationToken;
    $("log-page").textContent = value.length > 0 ? `Page ${page + 1}: ${when(value.at(-1).startedAt)} to ${when(value[0].startedAt)}` : "";
  } catch (error) {
    showFormProblem(error, "log");
  }
}

function addLogRow(body, entry) {
  const row = body.insertRow();
  row.insertCell().textContent = entry.mapping;
  row.insertCell().textContent = entry.direction === "toCrm" ? "To Dynamics 365" : "From Dynamics 365";
  row.insertCell().textContent = when(entry.startedAt);
  for (const count of ["inserted", "modified", "deleted", "unchanged", "skipped", "failed"]) row.insertCell().textContent = String(entry[count]);
  const message = row.insertCell();
  message.textContent = entry.message;
  if (entry.failed > 0) {
    const label = `${entry.mapping}, ${when(entry.startedAt)}`;
    message.append(
      " ",
      button("Errors", () => showLogErrors(entry), `Errors of ${label}`),
      " ",
      button(
        "Records",
        async () => {
          sync.issuesRun = entry.runId;
          $("issues-kind").value = "";
          $("issues-mapping").value = entry.mapping;
          await loadIssues();
          $("issues-heading").scrollIntoView();
          $("issues").querySelector("button")?.focus();
        },
        `Records of ${label}`,
      ),
    );
  }
}

async function showLogErrors(entry, token, list) {
  const box = $("log-errors");
  try {
    const query = new URLSearchParams({ top: "50" });
    if (token) query.set("continuationToken", token);
    const page = await api("GET", companyPath(`/sync/log/${encodeURIComponent(entry.id)}/errors?${query}`));
    if (!list) {
      list = document.createElement("ul");
      const heading = Object.assign(document.createElement("h3"), { textContent: `Errors of ${entry.mapping}, ${when(entry.startedAt)}`, tabIndex: -1 });
      box.replaceChildren(heading, list);
      box.hidden = false;
      heading.focus();
    }
    box.querySelector(".more-errors")?.remove();
    for (const error of page.value) {
      list.append(
        Object.assign(document.createElement("li"), {
          textContent: `${error.sourceId}${error.destinationId ? ` -> ${error.destinationId}` : ""}: ${error.reason}`,
        }),
      );
    }
    if (page.continuationToken) {
      const more = button("More errors", () => showLogErrors(entry, page.continuationToken, list));
      more.className = "more-errors";
      box.append(more);
    }
  } catch (error) {
    say(error.message);
  }
}

export function startSyncViews() {
  startOrders();
  $("refresh-jobs").addEventListener("click", loadJobs);
  $("mapping-form").addEventListener("submit", saveMapping);
  $("mapping-cancel").addEventListener("click", () => {
    $("mapping-form").hidden = true;
    sync.editing = undefined;
  });
  $("coupling-search").addEventListener("submit", (event) => {
    event.preventDefault();
    searchCouplings();
  });
  $("couplings-more").addEventListener("click", () => searchCouplings(true));
  $("couple-form").addEventListener("submit", coupleByHand);
  $("match-form").addEventListener("submit", matchRecords);
  $("issues-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    sync.issuesRun = undefined;
    loadIssues();
  });
  $("issues-more").addEventListener("click", () => loadIssues(true));
  $("log-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    loadLog(true);
  });
  $("log-older").addEventListener("click", () => loadLog(false, 1));
  $("log-newer").addEventListener("click", () => loadLog(false, -1));
  $("log-newest").addEventListener("click", () => loadLog(true));
}
