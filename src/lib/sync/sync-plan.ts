/**
 * Run counts, as the ERP's integration synchronization job log shows them. The planning itself is
 * field-level (reconcile.ts).
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

export { erpIdFor, syncMessages } from "./reconcile";
