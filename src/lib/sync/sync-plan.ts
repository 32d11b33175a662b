import { createHash } from "node:crypto";
import type { ErpFields } from "../erp/erp-schemas";
import type { Coupling } from "./coupling";
import type { ErpCondition, FieldMapping, MappingDefinition, MappingName } from "./default-mappings";

/**
 * Sync planning (BEHAVIOUR §6), pure: given what changed on each side and the couplings, decide what to
 * write, what is unchanged, skipped or failed. The runner does the I/O.
 */
export interface SyncCounts {
  inserted: number;
  modified: number;
  deleted: number;
  unchanged: number;
  skipped: number;
  failed: number;
}

export const emptyCounts = (): SyncCounts => ({ inserted: 0, modified: 0, deleted: 0, unchanged: 0, skipped: 0, failed: 0 });

export type CrmRow = Record<string, unknown>;

export interface ErpChange {
  id: string;
  fields: ErpFields;
  modifiedAt: string;
  modifiedBy: "erp" | "crm-sync";
  deleted: boolean;
  etag?: string;
}

export interface Failure {
  sourceId: string;
  destinationId?: string;
  reason: string;
}

/** erp id -> crm id of another mapping's couplings, and the reverse, for lookup fields. */
export interface LookupIndex {
  toCrm: Map<string, string>;
  toErp: Map<string, string>;
}
export type Lookups = Partial<Record<MappingName, LookupIndex>>;

export const syncMessages = {
  notCoupled: "The record is not coupled, and the mapping synchronizes coupled records only.",
  crmNewer: (crm: string, erp: string) => `Cannot update the ${crm} record because it has a later modified date than the ${erp} record.`,
  erpNewer: (erp: string, crm: string) => `Cannot update the ${erp} record because it has a later modified date than the ${crm} record.`,
  coupledToDeletedCrm: (crm: string) => `The record is coupled to a ${crm} record that was deleted in Dynamics 365 Sales.`,
  coupledToDeletedErp: (erp: string) => `The record is coupled to an ERP ${erp} record that was deleted.`,
} as const;

// ---------- ERP -> CRM ----------

export interface CrmWrite {
  erpId: string;
  crmId: string;
  /** Not coupled yet (or coupled pending): created with the pre-chosen id, via upsert. */
  create: boolean;
  row: CrmRow;
  hash: string;
  erpModifiedAt: string;
}

export interface ToCrmPlan {
  writes: CrmWrite[];
  /** Records whose values are already in CRM: only their coupling is refreshed. */
  unchanged: { erpId: string; erpModifiedAt: string }[];
  /** Coupled records deleted in the ERP: their coupling is removed (the CRM row is kept). */
  deletions: string[];
  skipped: Failure[];
  failed: Failure[];
  /** ERP records written by the sync itself: never sent back to CRM. */
  ownWrites: number;
}

export function planToCrm(input: {
  mapping: MappingDefinition;
  changes: ErpChange[];
  couplings: Map<string, Coupling>;
  lookups: Lookups;
  /** CRM rows changed by others since the last sync (id -> modifiedon), for the conflict rule. */
  crmChanged: Map<string, string>;
  includeUncoupled: boolean;
  newId: () => string;
}): ToCrmPlan {
  const { mapping } = input;
  const plan: ToCrmPlan = { writes: [], unchanged: [], deletions: [], skipped: [], failed: [], ownWrites: 0 };
  for (const change of input.changes) {
    const coupling = input.couplings.get(change.id);
    if (change.deleted) {
      if (coupling) plan.deletions.push(change.id);
      continue;
    }
    if (change.modifiedBy === "crm-sync") {
      plan.ownWrites++;
      continue;
    }
    if (!matchesErpFilter(change.fields, mapping.erpFilter)) continue;
    if (!coupling && mapping.onlyCoupledRecords && !input.includeUncoupled) {
      plan.skipped.push({ sourceId: change.id, reason: syncMessages.notCoupled });
      continue;
    }
    if (coupling && !coupling.pending && mapping.direction === "both") {
      const crmModifiedOn = input.crmChanged.get(coupling.crmId);
      if (crmModifiedOn && timeOf(crmModifiedOn) > timeOf(change.modifiedAt)) {
        plan.failed.push({ sourceId: change.id, destinationId: coupling.crmId, reason: syncMessages.crmNewer(mapping.crmEntitySet, mapping.erpTable) });
        continue;
      }
    }
    const create = !coupling || coupling.pending;
    const crmId = coupling?.crmId ?? input.newId();
    const values = crmValues(mapping, change.fields, input.lookups, create);
    const hash = hashOf(values);
    if (!create && coupling?.crmHash === hash) {
      plan.unchanged.push({ erpId: change.id, erpModifiedAt: change.modifiedAt });
      continue;
    }
    const row = create ? { ...mapping.crmDefaults, ...values, [mapping.crmKey]: crmId } : { ...values, [mapping.crmKey]: crmId };
    plan.writes.push({ erpId: change.id, crmId, create, row, hash, erpModifiedAt: change.modifiedAt });
  }
  return plan;
}

/** The CRM columns of an ERP record; lookups become @odata.bind to the coupled row. */
export function crmValues(mapping: MappingDefinition, fields: ErpFields, lookups: Lookups, creating: boolean): CrmRow {
  const row: CrmRow = {};
  for (const field of mapping.fields) {
    if (field.direction === "fromCrm" || (field.createOnly && !creating)) continue;
    const value = fields[field.erp];
    if (field.lookup) {
      const target = value === undefined || value === null || value === "" ? undefined : lookups[field.lookup.mapping]?.toCrm.get(String(value));
      if (target) row[`${field.lookup.navigation}@odata.bind`] = `/${field.lookup.entitySet}(${target})`;
      // A row always has an owner in Dataverse (ownerid is SystemRequired): an empty salesperson leaves it as it is.
      else if (!creating && !field.lookup.required && (value === undefined || value === null || value === "")) row[`${field.lookup.navigation}@odata.bind`] = null;
      // A code whose record is not coupled yet is left out; the next run sets it once it is.
      continue;
    }
    row[field.crm] = value ?? null;
  }
  return row;
}

// ---------- CRM -> ERP ----------

export interface ErpWrite {
  crmId: string;
  erpId: string;
  create: boolean;
  fields: ErpFields;
  etag?: string;
  hash: string;
  crmModifiedOn: string;
}

export interface FromCrmPlan {
  writes: ErpWrite[];
  unchanged: { erpId: string; crmId: string; crmModifiedOn: string }[];
  skipped: Failure[];
  failed: Failure[];
}

export function planFromCrm(input: {
  mapping: MappingDefinition;
  rows: CrmRow[];
  couplingsByCrm: Map<string, Coupling>;
  /** Current ERP records of the mapping's table, by id. */
  erpRecords: Map<string, ErpChange>;
  lookups: Lookups;
  /** ERP records changed by users since the last sync (id -> change stamp), for the conflict rule. */
  erpChanged: Map<string, string>;
  /** CRM ids this run just wrote from the ERP side: their older CRM version is not read back. */
  writtenThisRun: Set<string>;
  includeUncoupled: boolean;
  /** Turns a new record's fields into valid ERP fields, or says why it cannot. */
  validate: (fields: Record<string, unknown>) => { ok: true; fields: ErpFields } | { ok: false; reason: string };
}): FromCrmPlan {
  const { mapping } = input;
  const plan: FromCrmPlan = { writes: [], unchanged: [], skipped: [], failed: [] };
  for (const row of input.rows) {
    const crmId = String(row[mapping.crmKey]);
    const crmModifiedOn = String(row.modifiedon ?? "");
    if (input.writtenThisRun.has(crmId)) continue;
    const coupling = input.couplingsByCrm.get(crmId);
    // Rows at the watermark are read again (watermark - 1 s); a version already synchronized is skipped.
    if (coupling?.crmModifiedOn && timeOf(crmModifiedOn) <= timeOf(coupling.crmModifiedOn)) continue;
    if (!coupling && mapping.onlyCoupledRecords && !input.includeUncoupled) {
      plan.skipped.push({ sourceId: crmId, reason: syncMessages.notCoupled });
      continue;
    }
    const existing = coupling ? input.erpRecords.get(coupling.erpId) : undefined;
    if (coupling && (!existing || existing.deleted)) {
      plan.failed.push({ sourceId: crmId, destinationId: coupling.erpId, reason: syncMessages.coupledToDeletedErp(mapping.erpTable) });
      continue;
    }
    if (coupling && existing && mapping.direction === "both") {
      const erpChangedAt = input.erpChanged.get(coupling.erpId);
      if (erpChangedAt && timeOf(erpChangedAt) > timeOf(crmModifiedOn)) {
        plan.failed.push({ sourceId: crmId, destinationId: coupling.erpId, reason: syncMessages.erpNewer(mapping.erpTable, mapping.crmEntitySet) });
        continue;
      }
    }
    const mapped = erpValues(mapping, row, input.lookups);
    const erpId = coupling?.erpId ?? erpIdFor(crmId);
    const base = existing?.fields ?? input.erpRecords.get(erpId)?.fields;
    const merged = { ...(base ?? {}), ...mapped, id: erpId };
    const hash = hashOf(mapped);
    if (existing && sameValues(existing.fields, mapped)) {
      plan.unchanged.push({ erpId, crmId, crmModifiedOn });
      continue;
    }
    const checked = input.validate(merged);
    if (!checked.ok) {
      plan.failed.push({ sourceId: crmId, destinationId: erpId, reason: checked.reason });
      continue;
    }
    const current = existing ?? input.erpRecords.get(erpId);
    plan.writes.push({
      crmId,
      erpId,
      create: !coupling,
      fields: checked.fields,
      ...(current?.etag && !current.deleted && { etag: current.etag }),
      hash,
      crmModifiedOn,
    });
  }
  return plan;
}

/** The ERP fields of a CRM row; lookups become the coupled ERP code. */
export function erpValues(mapping: MappingDefinition, row: CrmRow, lookups: Lookups): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const field of mapping.fields) {
    if (field.direction === "toCrm") continue;
    const value = row[field.crm];
    if (field.lookup) {
      if (value === null || value === undefined) fields[field.erp] = undefined;
      else {
        const code = lookups[field.lookup.mapping]?.toErp.get(String(value).toLowerCase());
        if (code !== undefined) fields[field.erp] = code;
      }
      continue;
    }
    fields[field.erp] = value === null ? undefined : value;
  }
  return fields;
}

/** The columns to $select on the CRM side. */
export function crmColumns(mapping: MappingDefinition): string[] {
  const columns = new Set<string>([mapping.crmKey, "modifiedon", "_modifiedby_value"]);
  for (const field of mapping.fields as FieldMapping[]) if (field.direction !== "toCrm") columns.add(field.crm);
  return [...columns];
}

/** A new ERP record for a CRM row gets an id derived from the CRM id: a rerun after a crash finds it again. */
export function erpIdFor(crmId: string): string {
  return `CRM-${crmId.replace(/-/g, "").slice(0, 16).toUpperCase()}`;
}

export function matchesErpFilter(fields: ErpFields, conditions: ErpCondition[]): boolean {
  return conditions.every((condition) => {
    const value = fields[condition.field];
    if (condition.op === "present") return value !== undefined && value !== null && value !== "";
    return condition.op === "eq" ? value === condition.value : value !== condition.value;
  });
}

export function hashOf(values: Record<string, unknown>): string {
  const sorted = Object.keys(values)
    .sort()
    .map((key) => [key, values[key] ?? null]);
  return createHash("sha256").update(JSON.stringify(sorted)).digest("base64url").slice(0, 22);
}

function sameValues(current: Record<string, unknown>, mapped: Record<string, unknown>): boolean {
  return Object.entries(mapped).every(([key, value]) => normalize(current[key]) === normalize(value));
}

function normalize(value: unknown): unknown {
  return value === undefined || value === null || value === "" ? null : value;
}

/** Change stamps are `ISO-sequence`; CRM modifiedon is ISO. */
function timeOf(stamp: string): number {
  return Date.parse(stamp.slice(0, 24));
}
