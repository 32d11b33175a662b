// The shapes one run of a mapping works with; each step of the run (run/*.ts) takes the run's context.
import type { Config } from "../../config";
import type { CrmConnector } from "../../connection/crm-connector";
import type { DataverseClient } from "../../dataverse/dataverse-client";
import type { ConnectionSetup } from "../../model/connection-setup";
import type { Coupling } from "../../model/coupling";
import type { SyncIssue } from "../../model/sync-issue";
import type { SyncCounts } from "../../model/sync-plan";
import type { CouplingRepository } from "../../storage/coupling-repository";
import type { ErpRecordRepository, VersionedErpRecord } from "../../storage/erp-record-repository";
import type { SetupRepository } from "../../storage/setup-repository";
import type { SyncIssueRepository } from "../../storage/sync-issue-repository";
import type { SyncErrorEntry, SyncLogEntry, SyncLogRepository } from "../../storage/sync-log-repository";
import type { SyncRepository } from "../../storage/sync-repository";
import type { MappingDefinition, UpdateConflictResolution } from "../default-mappings";
import type { CrmRow, Lookups, PairPlan } from "../reconcile";

export interface MappingRunOptions {
  runId?: string;
  /** The run's time budget (e.g. `AbortSignal.timeout(ms)`): once it fires no new wave starts, and the next run continues from the watermark. */
  budget?: AbortSignal;
  /** Full synchronization: ignore watermarks and include uncoupled records. */
  full?: boolean;
  client?: DataverseClient;
  setup?: ConnectionSetup;
  /** Wait for another run of the mapping to finish (full synchronization) instead of giving up at once. */
  waitForLeaseMs?: number;
  /** Cancels the run (the host shutting down): it stops between waves and its Dataverse requests are stopped too. */
  signal?: AbortSignal;
  /** Told where the run is (phase, records done of the records found); awaited, so keep it cheap. */
  onProgress?: (progress: RunProgress) => Promise<void> | void;
}

export interface RunProgress {
  phase: "reading changes" | "synchronizing" | "writing the log";
  recordsDone: number;
  recordsTotal?: number;
}

export interface MappingRunResult {
  mapping: string;
  runId: string;
  logs: SyncLogEntry[];
  /** The time budget ran out before all changes were processed. */
  stoppedEarly: boolean;
}

export interface RecordSelection {
  erpIds?: string[];
  crmIds?: string[];
  /** Resolve conflicts of these records this way (a user chose the side). */
  resolution?: UpdateConflictResolution;
  /** "Synchronize now" in one direction: the chosen side's values replace the other's where they differ. */
  direction?: "toCrm" | "fromCrm";
}

export interface SyncRunnerInit {
  sync: SyncRepository;
  couplings: CouplingRepository;
  erpRecords: ErpRecordRepository;
  logs: SyncLogRepository;
  issues: SyncIssueRepository;
  connector: CrmConnector;
  setups: SetupRepository;
  config: Pick<Config, "SYNC_BATCH_SIZE" | "SYNC_MAX_PARALLEL"> & Partial<Pick<Config, "SYNC_LEASE_SECONDS">>;
  clock?: () => Date;
  /** Where the one structured line per run goes (the Functions host sends console output to Application Insights). */
  log?: (line: string) => void;
}

/** The structured record of one run, logged as `sync-run {json}` for Application Insights (README has a KQL query). */
export interface SyncRunRecord {
  event: "sync-run";
  company: string;
  mapping: string;
  runId: string;
  full: boolean;
  durationMs: number;
  stoppedEarly: boolean;
  dataverseRequests: number;
  throttled: number;
  counts: Record<"toCrm" | "fromCrm", { inserted: number; modified: number; deleted: number; unchanged: number; skipped: number; failed: number } | undefined>;
}

/** Another run holds the mapping (a job and a full synchronization never run one mapping at once). */
export class MappingBusyError extends Error {
  constructor(
    mapping: string,
    /** When the other run's hold lapses unless renewed (a run that died frees the mapping then). */
    readonly heldUntil?: Date,
  ) {
    super(`Another synchronization of ${mapping} is running; this run waits for the next turn.`);
    this.name = "MappingBusyError";
  }
}

export const crmPageSize = 5000;
/** Changes are read again from this far before the watermark: stamps of concurrent writers may commit out of order. */
export const watermarkLagMs = 2000;
/**
 * How long a run's hold on its mapping (and a worker's on its job entry) lasts unless renewed: the holder renews
 * it every third of that while it lives, so a run on an instance that died is taken over within one period.
 */
export function leaseMsOf(config: Partial<Pick<Config, "SYNC_LEASE_SECONDS">>): number {
  return (config.SYNC_LEASE_SECONDS ?? defaultLeaseSeconds) * 1000;
}
export const defaultLeaseSeconds = 90;

/** One record pair of a run: what each side is known to be, and where the pair came from. */
export interface Pair {
  key: string;
  coupling?: Coupling;
  erp?: VersionedErpRecord | "missing";
  crm?: CrmRow | "deleted" | "unchanged";
  /** The side the change was seen on, for the log's direction. */
  source: "erp" | "crm";
  issue?: SyncIssue;
  /** The stamp of the ERP state the pair holds, read from the change feed: its coupling records it once written. */
  erpStamp?: string;
  /** An earlier wave of the run wrote the record: its CRM row is read again rather than taken as unchanged. */
  freshCrm?: boolean;
}

export interface Outcome {
  pair: Pair;
  plan: PairPlan;
}

/** What a run (or a targeted synchronization of records) works with. */
export interface RunContext {
  company: string;
  name: string;
  runId: string;
  definition: MappingDefinition;
  client: DataverseClient;
  setup: ConnectionSetup;
  byErp: Map<string, Coupling>;
  byCrm: Map<string, Coupling>;
  /**
   * The maps hold only the couplings of the named records (a targeted synchronization of an indexed mapping):
   * any other is looked up by key when asked (coupledErp, coupledCrm).
   */
  partialCouplings?: boolean;
  lookups: Lookups;
  counts: { toCrm: SyncCounts; fromCrm: SyncCounts };
  errors: { toCrm: SyncErrorEntry[]; fromCrm: SyncErrorEntry[] };
  full: boolean;
  resolution?: UpdateConflictResolution;
  depth: number;
  /** Named records (synchronize now, restore, resolve): skipped ones are tried too. */
  targeted: boolean;
  /** The ERP watermark never passes this stamp: changes older than the lag at the start of the read have committed. */
  erpSafePoint?: string;
  /** Retry-list rows this run wrote, by `side:id`: a record the run meets again keeps its attempts. */
  issuesWritten: Map<string, SyncIssue>;
}

/** What the steps of a run use: the runner's adapters and clock, and the runner itself for lookup targets. */
export interface RunDeps {
  init: SyncRunnerInit;
  clock: () => Date;
  syncRecords: (company: string, name: string, selection: RecordSelection, options?: MappingRunOptions & { depth?: number }) => Promise<MappingRunResult>;
}

/** The ids a pair is known by: its ERP id (coupled, or an ERP record) or else its CRM id, and the side that names it. */
export function idsOf(pair: Pair): { erpId?: string; crmId?: string; side: SyncIssue["side"]; sourceId: string } {
  const erpId = pair.coupling?.erpId ?? (pair.key.startsWith("e:") ? pair.key.slice(2) : undefined);
  const crmId = pair.coupling?.crmId ?? (pair.key.startsWith("c:") ? pair.key.slice(2) : undefined);
  return {
    ...(erpId !== undefined && { erpId }),
    ...(crmId !== undefined && { crmId }),
    side: erpId !== undefined ? "erp" : "crm",
    sourceId: (erpId ?? crmId)!,
  };
}

/** The retry-list row of a pair, found by its ERP id or its CRM id (`side:id` keys). */
export function issueOf(pair: Pair, issues: Map<string, SyncIssue>): SyncIssue | undefined {
  // Asked twice per pair of a run, mostly of empty lists: no ids and keys built for nothing.
  if (issues.size === 0) return undefined;
  const { erpId, crmId } = idsOf(pair);
  return (erpId !== undefined ? issues.get(`erp:${erpId}`) : undefined) ?? (crmId !== undefined ? issues.get(`crm:${crmId.toLowerCase()}`) : undefined);
}

/** The coupling of an ERP record: from the run's map, or by key where the map holds only the named records. */
export async function coupledErp(deps: RunDeps, context: RunContext, erpId: string): Promise<Coupling | undefined> {
  const known = context.byErp.get(erpId);
  if (known || !context.partialCouplings) return known;
  const found = (await deps.init.couplings.byErpIds(context.company, context.name, [erpId])).get(erpId);
  if (found) context.byErp.set(erpId, found);
  return found;
}

/** The coupling of a CRM row: from the run's map, or through the CRM id index where the map holds only the named records. */
export async function coupledCrm(deps: RunDeps, context: RunContext, crmId: string): Promise<Coupling | undefined> {
  const id = crmId.toLowerCase();
  const known = context.byCrm.get(id);
  if (known || !context.partialCouplings) return known;
  const found = (await deps.init.couplings.byCrmIds(context.company, context.name, [id])).get(id);
  if (found) context.byCrm.set(id, found);
  return found;
}
