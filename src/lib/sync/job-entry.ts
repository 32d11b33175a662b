import type { JobStatus } from "./active-jobs";

/** A job-queue entry (the ERP's "Job Queue Entry" for a synchronization job). */
export interface JobEntry {
  company: string;
  /** The mapping name, or the statistics job's id. */
  id: string;
  kind: "mapping" | "statistics";
  description: string;
  status: JobStatus;
  recurring: boolean;
  minutesBetweenRuns: number;
  maxAttempts: number;
  rerunDelaySeconds: number;
  /** Failed runs in a row; reset by a successful run. */
  attempts: number;
  lastRunAt?: string;
  nextRunAt?: string;
  lastResult?: string;
  lastError?: string;
  /** Who runs it now, and until when the claim holds (an expired lease may be taken over). */
  leaseOwner?: string;
  leaseExpiresAt?: string;
}

/** A mapping as stored per company: its definition plus the watermarks that only move forward. */
export interface StoredMapping {
  company: string;
  name: string;
  definitionJson: string;
  /** ERP records modified after this were not synchronized yet (ISO time). */
  erpWatermark?: string;
  /** CRM rows modified after this were not synchronized yet (ISO time). */
  crmWatermark?: string;
  lastSyncAt?: string;
  lastSyncResult?: string;
}
