// Over 250 lines: one pure reconciliation of a record pair with its create and update paths; splitting it would scatter the field rules.
import { syncMessages } from "../model/sync-plan";
import type { FieldConflict } from "../model/sync-issue";
import type { ErpFields } from "../model/erp-schemas";
import type { Coupling, SyncedValues } from "../model/coupling";
import type { FieldMapping, MappingDefinition, MappingName, UpdateConflictResolution } from "./default-mappings";
import type { OptionTable } from "../model/erp-tables";

/**
 * Field-level reconciliation of one record pair (BEHAVIOUR §6), pure. Each coupling remembers the value
 * of every mapped field as last synchronized ("synced", in ERP terms: lookups as ERP codes). A side changed a
 * field when its current value differs from the synced one; only changed fields are written, a field the
 * source does not carry is never written, unmapped destination fields are never touched. Both sides
 * changing different fields merge; the same field is a conflict that the mapping's resolution decides.
 */
export type CrmRow = Record<string, unknown>;

/** erp code <-> crm id of another mapping's couplings, for lookup fields. */
export interface LookupIndex {
  toCrm: Map<string, string>;
  toErp: Map<string, string>;
}
/** Couplings of the mappings lookups go through, and (under `option:<table>`) ERP code <-> CRM option value. */
export type Lookups = Partial<Record<MappingName | `option:${OptionTable}`, LookupIndex>>;

/** What is known of a side: its current values, that it was deleted, or that it did not change since the last sync. */
export type ErpSide = { kind: "present"; fields: ErpFields } | { kind: "deleted" };
export type CrmSide = { kind: "present"; row: CrmRow } | { kind: "deleted" } | { kind: "unchanged" };

export interface PairInput {
  mapping: MappingDefinition;
  coupling?: Coupling;
  erp?: ErpSide;
  crm?: CrmSide;
  lookups: Lookups;
  /** Overrides the mapping's update conflict resolution (resolving a listed conflict by hand). */
  resolution?: UpdateConflictResolution;
}

/** A lookup whose target record is not coupled yet. */
export interface MissingTarget {
  /** The mapping the target record belongs to (absent for an option). */
  mapping?: MappingName;
  /** An option code or value with no option mapping (mapping is then the record's own mapping). */
  option?: OptionTable;
  /** The ERP code (writing to CRM) or the CRM id (writing to the ERP) that has no coupling. */
  erpCode?: string;
  crmId?: string;
}

export type PairPlan =
  | { action: "none" }
  | { action: "skip"; reason: string }
  | { action: "write"; toCrm?: CrmRow; toErp?: Record<string, unknown>; createCrm: boolean; createErp: boolean; synced: SyncedValues; afterCreate?: CrmRow }
  | { action: "conflict"; conflicts: FieldConflict[]; reason: string }
  | { action: "defer"; missing: MissingTarget[]; reason: string }
  | { action: "fail"; reason: string }
  | { action: "removeCoupling"; reason: string };

const absent = Symbol("absent");
type Canonical = unknown | typeof absent;

const toCrmAllowed = (mapping: MappingDefinition, field: FieldMapping) => mapping.direction !== "fromCrm" && field.direction !== "fromCrm";
const fromCrmAllowed = (mapping: MappingDefinition, field: FieldMapping) => mapping.direction !== "toCrm" && field.direction !== "toCrm";

/** Comparable form: "" and null are empty; a midnight-UTC timestamp is its date; numbers as numbers. */
export function canonical(value: unknown): unknown {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value === "string") {
    const midnight = /^(\d{4}-\d{2}-\d{2})T00:00:00(\.0+)?Z$/.exec(value);
    return midnight ? midnight[1] : value;
  }
  return value;
}

export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** The fields that take part: a disabled field mapping is neither read nor written. */
export function activeFields(mapping: MappingDefinition): FieldMapping[] {
  return mapping.fields.filter((field) => field.enabled !== false);
}

/**
 * The fields a pair synchronizes: the enabled ones, less option fields whose option mapping is not set up at
 * all (no code has a CRM option value yet): those stay out until the admin maps them, rather than holding
 * every record back. A code missing from a mapping that is set up defers its record.
 */
function fieldsOf(mapping: MappingDefinition, lookups: Lookups): FieldMapping[] {
  return activeFields(mapping).filter((field) => !field.option || lookups[`option:${field.option}`] !== undefined);
}

/** The ERP side's value of a field; absent when the record does not carry it (no information). */
function erpValue(fields: ErpFields, field: FieldMapping): Canonical {
  // A constant sent to CRM stands for the ERP value, whatever the record holds.
  if (field.constant !== undefined && field.direction === "toCrm") return canonical(field.constant);
  return field.erp in fields && fields[field.erp] !== undefined ? canonical(fields[field.erp]) : absent;
}

/** The CRM side's value in ERP terms; a lookup to an uncoupled row is a missing target (or empty for the owner). */
function crmValue(row: CrmRow, field: FieldMapping, lookups: Lookups): { value: unknown } | { missing: MissingTarget } {
  if (field.constant !== undefined && field.direction === "fromCrm") return { value: canonical(field.constant) };
  const value = row[field.crm];
  if (field.option) {
    if (value === null || value === undefined) return { value: null };
    const code = lookups[`option:${field.option}`]?.toErp.get(String(value));
    return code !== undefined ? { value: code } : { missing: { option: field.option, crmId: String(value) } };
  }
  if (!field.lookup) return { value: canonical(value) };
  if (value === null || value === undefined || value === "") return { value: null };
  const code = lookups[field.lookup.mapping]?.toErp.get(String(value).toLowerCase());
  if (code !== undefined) return { value: code };
  // A row's owner that is not (yet) a coupled salesperson says nothing about the ERP salesperson: an owner is
  // always set in CRM, so it is not a missing target that holds the record back, and not an empty value either.
  if (field.lookup.required) return { value: absent };
  return { missing: { mapping: field.lookup.mapping, crmId: String(value).toLowerCase() } };
}

/** The CRM columns that set a field to an ERP value; lookups as @odata.bind to the coupled row. */
function crmColumnsOf(field: FieldMapping, value: unknown, lookups: Lookups): { columns: CrmRow } | { missing: MissingTarget } {
  if (field.option) {
    if (value === null) return { columns: { [field.crm]: null } };
    const option = lookups[`option:${field.option}`]?.toCrm.get(String(value));
    return option !== undefined ? { columns: { [field.crm]: Number(option) } } : { missing: { option: field.option, erpCode: String(value) } };
  }
  if (!field.lookup) return { columns: { [field.crm]: value } };
  const bind = `${field.lookup.navigation}@odata.bind`;
  if (value === null) return field.lookup.required ? { columns: {} } : { columns: { [bind]: null } };
  const target = lookups[field.lookup.mapping]?.toCrm.get(String(value));
  if (!target) return { missing: { mapping: field.lookup.mapping, erpCode: String(value) } };
  return { columns: { [bind]: `/${field.lookup.entitySet}(${target})` } };
}

export function matchesErpFilter(fields: ErpFields, mapping: MappingDefinition): boolean {
  return mapping.erpFilter.every((condition) => {
    const value = fields[condition.field];
    if (condition.op === "present") return value !== undefined && value !== null && value !== "";
    return condition.op === "eq" ? value === condition.value : value !== condition.value;
  });
}

/**
 * A coupled CRM row whose synchronized fields all still hold their last synchronized values: nothing to take
 * from it. Most often the sync's own write, read back by the next run; such a row needs no ERP read at all.
 */
export function crmRowUnchanged(mapping: MappingDefinition, coupling: Coupling, row: CrmRow, lookups: Lookups): boolean {
  const synced = coupling.synced;
  if (coupling.pending || synced === undefined) return false;
  return fieldsOf(mapping, lookups).every((field) => {
    if (!fromCrmAllowed(mapping, field)) return true;
    const value = crmValue(row, field, lookups);
    if ("missing" in value) return false;
    if (value.value === absent) return true;
    return field.erp in synced && sameValue(value.value, synced[field.erp]);
  });
}

export function reconcile(input: PairInput): PairPlan {
  const { mapping, coupling, erp, crm } = input;
  if (coupling && !coupling.pending) return reconcileCoupled(input, coupling);
  if (erp?.kind === "present") return createInCrm(input, erp.fields);
  if (crm?.kind === "present") return createInErp(input, crm.row);
  void mapping;
  return { action: "none" };
}

function reconcileCoupled(input: PairInput, coupling: Coupling): PairPlan {
  const { mapping, erp, crm, lookups } = input;
  const deletion = mapping.deletionConflictResolution;
  if (!erp || erp.kind === "deleted") {
    if (deletion === "removeCoupling") return { action: "removeCoupling", reason: syncMessages.coupledToDeletedErp(mapping.erpTable) };
    if (deletion === "restoreRecords" && crm?.kind === "present") return createInErp({ ...input, coupling: undefined }, crm.row, coupling.erpId);
    return { action: "fail", reason: syncMessages.coupledToDeletedErp(mapping.erpTable) };
  }
  if (crm?.kind === "deleted") {
    if (deletion === "removeCoupling") return { action: "removeCoupling", reason: syncMessages.coupledToDeletedCrm(mapping.crmEntitySet) };
    if (deletion === "restoreRecords") return createInCrm({ ...input, coupling: undefined }, erp.fields, coupling.crmId);
    return { action: "fail", reason: syncMessages.coupledToDeletedCrm(mapping.crmEntitySet) };
  }
  if (!matchesErpFilter(erp.fields, mapping)) return { action: "none" };

  const synced: SyncedValues = { ...coupling.synced };
  const initial = coupling.synced === undefined;
  const toCrm: CrmRow = {};
  const toErp: Record<string, unknown> = {};
  const conflicts: FieldConflict[] = [];
  const missing: MissingTarget[] = [];
  const resolution = input.resolution ?? mapping.updateConflictResolution;

  for (const field of fieldsOf(mapping, lookups)) {
    const key = field.erp;
    const current = erpValue(erp.fields, field);
    // The CRM side counts only where the field is synchronized from CRM; elsewhere the ERP is its master.
    let crmCurrent: unknown = key in synced ? synced[key] : absent;
    if (fromCrmAllowed(mapping, field) && crm?.kind === "present") {
      const value = crmValue(crm.row, field, lookups);
      if ("missing" in value) {
        missing.push(value.missing);
        continue;
      }
      crmCurrent = value.value;
    }
    const erpKnown = current !== absent;
    const crmKnown = crmCurrent !== absent;
    if (erpKnown && crmKnown && sameValue(current, crmCurrent)) {
      synced[key] = canonical(current);
      continue;
    }
    const erpChanged = erpKnown && toCrmAllowed(mapping, field) && (initial || !(key in synced) || !sameValue(current, synced[key]));
    const crmChanged = crmKnown && fromCrmAllowed(mapping, field) && (initial || !(key in synced) || !sameValue(crmCurrent, synced[key]));
    let send: "toCrm" | "toErp" | undefined;
    if (erpChanged && crmChanged) {
      // A new coupling has no common past: the mapping's main direction decides, not a conflict.
      if (initial || !(key in synced)) send = mapping.direction === "fromCrm" ? "toErp" : "toCrm";
      else if (resolution === "sendUpdateToIntegration") send = "toCrm";
      else if (resolution === "getUpdateFromIntegration") send = "toErp";
      else conflicts.push({ erpField: key, crmColumn: field.crm, erpValue: current, crmValue: crmCurrent, syncedValue: synced[key] ?? null });
    } else if (erpChanged) send = "toCrm";
    else if (crmChanged) send = "toErp";
    if (send === "toCrm") {
      if (field.createOnly) continue;
      const columns = crmColumnsOf(field, current, lookups);
      if ("missing" in columns) missing.push(columns.missing);
      else {
        Object.assign(toCrm, columns.columns);
        synced[key] = canonical(current);
      }
    } else if (send === "toErp") {
      // Clearing a field the ERP record does not carry changes nothing there.
      if (!sameValue(erpKnown ? current : null, crmCurrent)) toErp[key] = crmCurrent;
      synced[key] = canonical(crmCurrent);
    }
  }
  if (conflicts.length > 0) return { action: "conflict", conflicts, reason: syncMessages.conflict(mapping.crmEntitySet, mapping.erpTable) };
  if (missing.length > 0) return deferral(mapping, missing);
  const hasCrm = Object.keys(toCrm).length > 0;
  const hasErp = Object.keys(toErp).length > 0;
  return {
    action: "write",
    ...(hasCrm && { toCrm: { ...toCrm, [mapping.crmKey]: coupling.crmId } }),
    ...(hasErp && { toErp }),
    createCrm: false,
    createErp: false,
    synced,
  };
}

/** An uncoupled ERP record: a new CRM row with every field the record carries (and the mapping's defaults). */
function createInCrm(input: PairInput, fields: ErpFields, crmId?: string): PairPlan {
  const { mapping, lookups, coupling } = input;
  if (mapping.direction === "fromCrm" || !matchesErpFilter(fields, mapping)) return { action: "none" };
  const row: CrmRow = { ...mapping.crmDefaults };
  const afterCreate: CrmRow = {};
  const synced: SyncedValues = {};
  const missing: MissingTarget[] = [];
  for (const field of fieldsOf(mapping, lookups)) {
    const value = erpValue(fields, field);
    if (!toCrmAllowed(mapping, field)) continue;
    // A new row has nothing in a column it was not sent: that is the common starting point of the field.
    if (value === absent) {
      if (!(field.crm in mapping.crmDefaults)) synced[field.erp] = null;
      continue;
    }
    if (value === null && field.lookup) {
      synced[field.erp] = null;
      continue;
    }
    const columns = crmColumnsOf(field, value, lookups);
    if ("missing" in columns) missing.push(columns.missing);
    else {
      Object.assign(field.afterCreate ? afterCreate : row, columns.columns);
      synced[field.erp] = value;
    }
  }
  if (missing.length > 0) return deferral(mapping, missing);
  const id = crmId ?? coupling?.crmId;
  return {
    action: "write",
    toCrm: id ? { ...row, [mapping.crmKey]: id } : row,
    createCrm: true,
    createErp: false,
    synced,
    ...(Object.keys(afterCreate).length > 0 && { afterCreate }),
  };
}

/** An uncoupled CRM row: a new ERP record; its id is the mapped CRM value (the product number) when the mapping has one. */
function createInErp(input: PairInput, row: CrmRow, erpId?: string): PairPlan {
  const { mapping, lookups } = input;
  if (mapping.direction === "toCrm") return { action: "none" };
  const fields: Record<string, unknown> = {};
  const synced: SyncedValues = {};
  const missing: MissingTarget[] = [];
  for (const field of fieldsOf(mapping, lookups)) {
    if (!fromCrmAllowed(mapping, field)) continue;
    const value = crmValue(row, field, lookups);
    if ("missing" in value) {
      missing.push(value.missing);
      continue;
    }
    if (value.value === absent) continue;
    if (value.value === null) {
      synced[field.erp] = null;
      continue;
    }
    fields[field.erp] = value.value;
    synced[field.erp] = value.value;
  }
  if (missing.length > 0) return deferral(mapping, missing);
  const id = erpId ?? (typeof fields.id === "string" && fields.id !== "" ? fields.id : erpIdFor(String(row[mapping.crmKey])));
  return {
    action: "write",
    toErp: { ...fields, id },
    createCrm: false,
    createErp: true,
    synced: { ...synced, ...("id" in synced || mapping.fields.some((field) => field.erp === "id") ? { id } : {}) },
  };
}

function deferral(mapping: MappingDefinition, missing: MissingTarget[]): PairPlan {
  const first = missing[0]!;
  if (first.option) return { action: "defer", missing, reason: syncMessages.noOptionMapping(first.option, first.erpCode ?? first.crmId ?? "") };
  const reason =
    first.erpCode !== undefined
      ? syncMessages.notCoupledTarget(targetErpTable(mapping, first.mapping!), first.erpCode)
      : syncMessages.notCoupledTarget(targetCrmTable(mapping, first.mapping!), first.crmId ?? "");
  return { action: "defer", missing, reason };
}

function targetErpTable(mapping: MappingDefinition, target: MappingName): string {
  return mapping.fields.find((field) => field.lookup?.mapping === target)?.erp ?? target;
}

function targetCrmTable(mapping: MappingDefinition, target: MappingName): string {
  return mapping.fields.find((field) => field.lookup?.mapping === target)?.lookup?.entitySet ?? target;
}

/** A new ERP record for a CRM row gets an id derived from the CRM id: a rerun after a crash finds it again. */
export function erpIdFor(crmId: string): string {
  return `CRM-${crmId.replace(/-/g, "").slice(0, 16).toUpperCase()}`;
}

/** The columns to $select on the CRM side. */
export function crmColumns(mapping: MappingDefinition): string[] {
  const columns = new Set<string>([mapping.crmKey, "modifiedon", "_modifiedby_value"]);
  for (const field of activeFields(mapping)) if (field.direction !== "toCrm" && !field.createOnly && field.constant === undefined) columns.add(field.crm);
  if (mapping.matchOn) columns.add(mapping.matchOn.crm);
  return [...columns];
}
