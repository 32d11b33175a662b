// Lookups and option values in ERP terms, and the lookup targets a wave synchronizes first.
import { DataverseRequestError } from "../../dataverse/dataverse-errors";
import type { MappingDefinition, MappingName } from "../default-mappings";
import type { Lookups, PairPlan } from "../reconcile";
import { MappingBusyError, type Outcome, type RecordSelection, type RunContext, type RunDeps } from "./run-context";
import { planPair } from "./plan-pair";
import type { Lease } from "./mapping-lease";
import type { ChangeFeeds } from "./change-feeds";

/**
 * A targeted synchronization's couplings: on a mapping the CRM id index covers, those of the named records only
 * (by key), the rest looked up when asked (run-context.ts coupledErp, coupledCrm); else the mapping's whole.
 */
export async function loadCouplingsOf(deps: RunDeps, context: RunContext, lease: Pick<Lease, "state" | "save">, selection: RecordSelection): Promise<void> {
  if (!lease.state.crmIdIndexed) return loadCouplings(deps, context, lease);
  await deps.init.couplings.recoverPending(context.company, context.name);
  const [byErp, byCrm, lookups] = await Promise.all([
    deps.init.couplings.byErpIds(context.company, context.name, selection.erpIds ?? []),
    deps.init.couplings.byCrmIds(context.company, context.name, selection.crmIds ?? []),
    loadLookups(deps, context.company, context.definition),
  ]);
  for (const coupling of [...byErp.values(), ...byCrm.values()]) {
    context.byErp.set(coupling.erpId, coupling);
    context.byCrm.set(coupling.crmId.toLowerCase(), coupling);
  }
  context.partialCouplings = true;
  context.lookups = lookups;
}

/**
 * A scheduled run's couplings on a mapping the CRM id index covers, once change tracking has started: those of
 * the records beside the ERP feed (the retry list, CRM changes and deletions), by key; the ERP feed's records
 * get theirs wave by wave (feed-waves.ts). What a run holds follows its changes, not the mapping. The first
 * run of a mapping reads it whole (change tracking starts from the full list of coupled rows).
 */
export async function loadCouplingsBesideFeed(
  deps: RunDeps,
  context: RunContext,
  lease: Pick<Lease, "state" | "save">,
  feeds: Pick<ChangeFeeds, "delta" | "issues" | "crmRows">,
): Promise<void> {
  if (!lease.state.crmIdIndexed || !feeds.delta) return loadCouplings(deps, context, lease);
  const { definition } = context;
  const erpIds = feeds.issues.filter((issue) => issue.side === "erp").map((issue) => issue.sourceId);
  const crmIds = [
    ...feeds.issues.filter((issue) => issue.side === "crm").map((issue) => issue.sourceId),
    ...feeds.delta.deleted,
    ...feeds.crmRows.map((row) => String(row[definition.crmKey])),
  ];
  await loadCouplingsOf(deps, context, lease, { erpIds, crmIds });
}

/** The mapping's couplings, by ERP id and by CRM id, and its lookups: read once a run has something to do. */
export async function loadCouplings(deps: RunDeps, context: RunContext, lease: Pick<Lease, "state" | "save">): Promise<void> {
  // The run holds the mapping's lease: a manifest found now was left by a run that crashed.
  await deps.init.couplings.recoverPending(context.company, context.name);
  const [couplings, lookups] = await Promise.all([
    deps.init.couplings.load(context.company, context.name),
    loadLookups(deps, context.company, context.definition),
  ]);
  context.byErp = new Map(couplings.map((coupling) => [coupling.erpId, coupling]));
  context.byCrm = new Map(couplings.map((coupling) => [coupling.crmId.toLowerCase(), coupling]));
  context.lookups = lookups;
  // Couplings made before the CRM id index existed get their index rows, once per mapping.
  if (!lease.state.crmIdIndexed) {
    await deps.init.couplings.indexAll(context.company, context.name, couplings);
    await lease.save({ crmIdIndexed: true });
  }
}

export async function loadLookups(deps: RunDeps, company: string, definition: MappingDefinition): Promise<Lookups> {
  const names = [...new Set(definition.fields.flatMap((field) => (field.lookup ? [field.lookup.mapping] : [])))];
  const optionTables = [...new Set(definition.fields.flatMap((field) => (field.option ? [field.option] : [])))];
  const lookups: Lookups = {};
  await Promise.all(
    optionTables.map(async (table) => {
      const codes = (await deps.init.erpRecords.changedSince(company, table)).filter(
        (record) => !record.deleted && typeof record.fields.crmOptionValue === "number",
      );
      // Not set up at all: the option field stays out of the synchronization (reconcile.ts fieldsOf).
      if (codes.length === 0) return;
      lookups[`option:${table}`] = {
        toCrm: new Map(codes.map((record) => [record.id, String(record.fields.crmOptionValue)])),
        toErp: new Map(codes.map((record) => [String(record.fields.crmOptionValue), record.id])),
      };
    }),
  );
  await Promise.all(
    names.map(async (mapping) => {
      const couplings = (await deps.init.couplings.load(company, mapping)).filter((coupling) => !coupling.pending);
      lookups[mapping] = {
        toCrm: new Map(couplings.map((coupling) => [coupling.erpId, coupling.crmId.toLowerCase()])),
        toErp: new Map(couplings.map((coupling) => [coupling.crmId.toLowerCase(), coupling.erpId])),
      };
    }),
  );
  return lookups;
}

/**
 * Records deferred for a lookup whose target is not coupled: the targets are synchronized first where
 * their mapping allows (once, not recursively), then the records are planned again.
 */
export async function resolveLookupTargets(deps: RunDeps, context: RunContext, outcomes: Outcome[]): Promise<Outcome[]> {
  const deferred = outcomes.filter((outcome) => outcome.plan.action === "defer");
  if (deferred.length === 0 || context.depth > 0) return outcomes;
  const targets = new Map<MappingName, { erpIds: Set<string>; crmIds: Set<string> }>();
  for (const { plan } of deferred) {
    for (const missing of (plan as Extract<PairPlan, { action: "defer" }>).missing) {
      // An option without its mapping waits for the admin, not for another mapping's records.
      if (missing.option || !missing.mapping) continue;
      const entry = targets.get(missing.mapping) ?? { erpIds: new Set(), crmIds: new Set() };
      if (missing.erpCode !== undefined) entry.erpIds.add(missing.erpCode);
      if (missing.crmId !== undefined) entry.crmIds.add(missing.crmId);
      targets.set(missing.mapping, entry);
    }
  }
  let synchronized = false;
  for (const [mapping, ids] of targets) {
    if (mapping === context.name || !(await deps.init.sync.mapping(context.company, mapping))) continue;
    try {
      await deps.syncRecords(
        context.company,
        mapping,
        { erpIds: [...ids.erpIds], crmIds: [...ids.crmIds] },
        { runId: context.runId, client: context.client, setup: context.setup, depth: context.depth + 1 },
      );
      synchronized = true;
    } catch (error) {
      // Busy or failing: the records stay deferred and are retried by the next run.
      if (!(error instanceof MappingBusyError) && !(error instanceof DataverseRequestError)) throw error;
    }
  }
  if (!synchronized) return outcomes;
  context.lookups = await loadLookups(deps, context.company, context.definition);
  return outcomes.map((outcome) => (outcome.plan.action === "defer" ? { pair: outcome.pair, plan: planPair(context, outcome.pair) } : outcome));
}
