export interface FieldConflict {
  erpField: string;
  crmColumn: string;
  erpValue: unknown;
  crmValue: unknown;
  syncedValue: unknown;
}

/**
 * A record that did not synchronize, and why (BEHAVIOUR §6):
 * - deferred: a lookup's target is not coupled yet; retried on every run until it is, never Skipped;
 * - failed: refused or in error; retried on later runs, Skipped after the mapping's maximum attempts;
 * - conflict: both sides changed the same field and the mapping's resolution is "none"; waits for a user
 *   (GET .../sync/conflicts, POST .../resolve) or for either side to change again;
 * - skipped: failed too often (BC's "CRM Synch. Skipped Records"); waits for POST .../sync/skipped/{id}/retry.
 */
export type SyncIssueKind = "deferred" | "failed" | "conflict" | "skipped";

export interface SyncIssue {
  /** Stable id for the API: the mapping, the side the record is known by, and its id there. */
  id: string;
  company: string;
  mapping: string;
  /** Coupled records and uncoupled ERP records are known by their ERP id; uncoupled CRM rows by their CRM id. */
  side: "erp" | "crm";
  sourceId: string;
  erpId?: string;
  crmId?: string;
  kind: SyncIssueKind;
  attempts: number;
  reason: string;
  direction: "toCrm" | "fromCrm";
  firstAt: string;
  lastAt: string;
  runId?: string;
  conflicts?: FieldConflict[];
}

/** The retry list of a run: what is retried without waiting for another change. */
export const retriedKinds: readonly SyncIssueKind[] = ["deferred", "failed"];

export function issueKey(mapping: string, side: SyncIssue["side"], sourceId: string): string {
  return Buffer.from(JSON.stringify([mapping, side, sourceId])).toString("base64url");
}

export function parseIssueKey(id: string): { mapping: string; side: SyncIssue["side"]; sourceId: string } | undefined {
  try {
    const [mapping, side, sourceId] = JSON.parse(Buffer.from(id, "base64url").toString("utf8")) as [unknown, unknown, unknown];
    if (typeof mapping !== "string" || (side !== "erp" && side !== "crm") || typeof sourceId !== "string") return undefined;
    return { mapping, side, sourceId };
  } catch {
    return undefined;
  }
}
