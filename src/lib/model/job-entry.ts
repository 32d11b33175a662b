import type { JobKind, JobStatus } from "./active-jobs";

/** A job-queue entry (the ERP's "Job Queue Entry" for a synchronization job). */
export interface JobEntry {
  company: string;
  /** The mapping name, or the statistics job's id. */
  id: string;
  kind: JobKind;
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
  /** Hold or Ready asked for while the entry runs: applied when the run ends, never breaking the lease. */
  requestedStatus?: "On Hold" | "Ready";
  /** A full synchronization holds the entry (it does not run) until it ends, or until this time after a crash. */
  heldByFullSync?: string;
  heldUntil?: string;
  /**
   * BC's "Inactivity Timeout Period": after this many minutes of runs that found nothing to synchronize, the
   * entry sleeps (runs only every that many minutes) until an ERP change wakes it. 0 = never sleeps.
   */
  inactivityTimeoutMinutes?: number;
  /** The first run of the current stretch of runs that found nothing to synchronize. */
  idleSince?: string;
  sleeping?: boolean;
  /** Where the running run is (RunProgress as JSON, with its run id and time); removed when the run ends. */
  progressJson?: string;
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
  /** Every coupling of the mapping has its CRM id index row (written by a run once, for couplings made before the index). */
  crmIdIndexed?: boolean;
  /** Change tracking: the delta link that reports CRM rows deleted since the last run. */
  crmDeltaLink?: string;
  /** The run that holds the mapping, and until when (a job run and a full synchronization never overlap). */
  runLeaseOwner?: string;
  runLeaseExpiresAt?: string;
}
