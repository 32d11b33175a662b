// Fills in what each pair still lacks before it is planned: the other side's record, in bulk; a match for a new CRM row.
import { mapLimit } from "../../map-limit";
import type { VersionedErpRecord } from "../../storage/erp-record-repository";
import { type CrmRow, crmColumns, erpIdFor } from "../reconcile";
import { type Pair, type RunContext, type RunDeps, coupledErp } from "./run-context";
import { pointReadParallelism } from "../../map-limit";
import { scopeColumns, withScope } from "../../model/company-scope";

/**
 * Fills in what each pair still needs: the ERP record of a CRM change, the CRM row of a retried record
 * (fetched fresh, in bulk), the ERP record a new CRM row matches (same email, same number).
 */
export async function completePairs(
  deps: RunDeps,
  context: RunContext,
  pairs: Pair[],
  fetchCrm = false,
  coupledByRun?: (erpId: string) => Promise<boolean>,
): Promise<void> {
  const { definition } = context;
  const needErp = pairs.filter((pair) => pair.erp === undefined && (pair.coupling || pair.key.startsWith("e:")));
  await mapLimit(needErp, pointReadParallelism, async (pair) => {
    const erpId = pair.coupling?.erpId ?? pair.key.slice(2);
    pair.erp = (await deps.init.erpRecords.get(context.company, definition.erpTable, erpId)) ?? "missing";
  });
  const needCrm = pairs.filter(
    (pair) =>
      pair.crm === undefined &&
      (pair.issue ||
        fetchCrm ||
        // (a pending coupling has its row read below in any case)
        (pair.freshCrm && pair.coupling && !pair.coupling.pending) ||
        (pair.coupling && definition.deletionConflictResolution === "restoreRecords" && pair.erp !== undefined && pair.erp !== "missing" && pair.erp.deleted)),
  );
  const crmIds = needCrm
    .map((pair) => pair.coupling?.crmId ?? (pair.key.startsWith("c:") ? pair.key.slice(2) : undefined))
    .filter((id): id is string => id !== undefined);
  if (crmIds.length > 0) {
    const rows = await crmRowsByIds(context, crmIds, false);
    for (const pair of needCrm) {
      const crmId = (pair.coupling?.crmId ?? pair.key.slice(2)).toLowerCase();
      const row = rows.get(crmId);
      pair.crm = row ?? (pair.coupling ? "deleted" : undefined);
    }
  }
  // A pending coupling whose row exists was created by a run that died before it recorded the coupling:
  // finish the coupling and compare, rather than create again (create-only columns would be refused).
  const pendingPairs = pairs.filter((pair) => pair.coupling?.pending && (pair.crm === undefined || pair.crm === "unchanged"));
  if (pendingPairs.length > 0) {
    const rows = await crmRowsByIds(
      context,
      pendingPairs.map((pair) => pair.coupling!.crmId),
      false,
    );
    for (const pair of pendingPairs) {
      const row = rows.get(pair.coupling!.crmId.toLowerCase());
      if (!row) continue;
      const { synced: _synced, ...rest } = pair.coupling!;
      pair.coupling = { ...rest, pending: false };
      pair.crm = row;
    }
  }
  for (const pair of pairs) if (pair.crm === undefined && pair.coupling && !pair.coupling.pending) pair.crm = "unchanged";

  // An uncoupled CRM row first looks for its ERP record: the same match value, or the id a rerun would give it.
  const uncoupledCrm = pairs.filter((pair) => !pair.coupling && pair.key.startsWith("c:") && pair.crm && typeof pair.crm === "object");
  if (uncoupledCrm.length === 0 || definition.direction === "toCrm") return;
  // Taken: coupled before the run, matched just now, or coupled by this run's waves (coupledByRun).
  const matched = new Set<string>();
  const taken = async (erpId: string) => matched.has(erpId) || (await coupledErp(deps, context, erpId)) !== undefined || (await coupledByRun?.(erpId)) === true;
  let byMatch: Map<string, VersionedErpRecord> | undefined;
  if (definition.matchOn && definition.matchOn.erp !== "id") {
    byMatch = new Map();
    for (const record of await deps.init.erpRecords.changedSince(context.company, definition.erpTable, undefined)) {
      const value = record.fields[definition.matchOn.erp];
      if (!record.deleted && !context.byErp.has(record.id) && typeof value === "string" && value !== "") byMatch.set(value.toLowerCase(), record);
    }
  }
  await mapLimit(uncoupledCrm, pointReadParallelism, async (pair) => {
    const row = pair.crm as CrmRow;
    const crmId = String(row[definition.crmKey]).toLowerCase();
    let record: VersionedErpRecord | undefined;
    if (definition.matchOn && byMatch) {
      const value = row[definition.matchOn.crm];
      if (typeof value === "string" && value !== "") record = byMatch.get(value.toLowerCase());
      if (record) byMatch.delete(String(value).toLowerCase());
    } else {
      const matchValue = definition.matchOn ? row[definition.matchOn.crm] : undefined;
      const candidates = [typeof matchValue === "string" && matchValue !== "" ? matchValue : undefined, erpIdFor(crmId)].filter(
        (candidate): candidate is string => candidate !== undefined,
      );
      for (const candidate of candidates) {
        if (await taken(candidate)) continue;
        const found = await deps.init.erpRecords.get(context.company, definition.erpTable, candidate);
        if (found && !found.deleted) {
          record = found;
          break;
        }
        // A deleted record under the id the new record will get: it is written over (restored), not created.
        if (found?.deleted && candidate === candidates[0]) pair.erp = found;
      }
    }
    if (record && !(await taken(record.id)) && !matched.has(record.id)) {
      matched.add(record.id);
      // A match is a new coupling with no common past: the mapping's main direction settles differences.
      pair.coupling = { erpId: record.id, crmId, pending: false };
      pair.erp = record;
    }
  });
}

export async function crmRowsByIds(context: RunContext, crmIds: string[], withFilter: boolean): Promise<Map<string, CrmRow>> {
  const { definition, client } = context;
  // Uncoupled rows only within the mapping's filter and this company's scope; coupled ones as they are.
  const filter = withFilter ? withScope(context.setup, definition.crmEntitySet, definition.crmFilter) : undefined;
  const rows = await client.retrieveByIds(definition.crmEntitySet, definition.crmKey, crmIds, {
    select: [...crmColumns(definition), ...scopeColumns(context.setup, definition.crmEntitySet)],
    ...(filter && { filter }),
  });
  return new Map(rows.map((row) => [String(row[definition.crmKey]).toLowerCase(), row]));
}
