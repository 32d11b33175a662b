// How couplings are stored: a row's columns for a coupling and back, and what a writer knows of the row.
import type { Coupling } from "../model/coupling";

/** Couplings read from their rows (not a manifest's pending entry, nor one a run just made): see rowOf. */
const readFromRows = new WeakSet<Coupling>();

/**
 * What a writer knows of a coupling's row: "absent" (the run found none), "present" (the coupling was read from it),
 * or undefined (not known: a match just made, a manifest's entry).
 */
export type CouplingRow = "absent" | "present" | undefined;

/** Whether a coupling was read from its row: its next write is an update. */
export function rowOf(coupling: Coupling | undefined): CouplingRow {
  if (!coupling) return "absent";
  return readFromRows.has(coupling) ? "present" : undefined;
}

/** The coupling a row holds, remembered as read from its row (rowOf). */
export function couplingOf(row: Record<string, unknown>): Coupling {
  const coupling: Coupling = {
    erpId: decodeURIComponent(String(row.rowKey)),
    crmId: String(row.crmId),
    pending: row.pending === true,
    ...(typeof row.erpModifiedAt === "string" && { erpModifiedAt: row.erpModifiedAt }),
    ...(typeof row.crmModifiedOn === "string" && { crmModifiedOn: row.crmModifiedOn }),
    ...(typeof row.syncedJson === "string" && { synced: JSON.parse(row.syncedJson) as Coupling["synced"] }),
  };
  readFromRows.add(coupling);
  return coupling;
}

/** Couplings of one company and mapping live in the partitions `<company>~<mapping>~<bucket>`. */
export function baseOf(company: string, mapping: string): string {
  return `${company}~${mapping}`;
}

/** Fails to compile when Coupling gains a field that withoutUndefined does not store. */
const everyFieldStored: Exclude<keyof Coupling, "erpId" | "crmId" | "pending" | "synced" | "erpModifiedAt" | "crmModifiedOn"> extends never ? true : never =
  true;
void everyFieldStored;

/** A coupling's columns, written field by field (no entries and spreads: a large run saves one per record). */
export function withoutUndefined(coupling: Coupling): Record<string, unknown> {
  const columns: Record<string, unknown> = { crmId: coupling.crmId, pending: coupling.pending };
  if (coupling.erpModifiedAt !== undefined) columns.erpModifiedAt = coupling.erpModifiedAt;
  if (coupling.crmModifiedOn !== undefined) columns.crmModifiedOn = coupling.crmModifiedOn;
  if (coupling.synced) columns.syncedJson = JSON.stringify(coupling.synced);
  return columns;
}
