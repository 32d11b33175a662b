// Over 250 lines: a run's steps (feeds, pairs, waves, writes, log, leases) share one run context; moving each step to its own module is the next
// step of issue 15.
import { randomUUID } from "node:crypto";
import type { Config } from "../config";
import type { CrmConnector } from "../connection/crm-connector";
import type { DataverseClient } from "../dataverse/dataverse-client";
import { DataverseRequestError } from "../dataverse/dataverse-errors";
import { type ErpFields, erpSchemas } from "../model/erp-schemas";
import type { ConnectionSetup } from "../model/connection-setup";
import type { CouplingRepository } from "../storage/coupling-repository";
import type { ErpRecordRepository, SyncWrite, VersionedErpRecord } from "../storage/erp-record-repository";
import { ConcurrencyError, type SetupRepository } from "../storage/setup-repository";
import type { SyncIssueRepository } from "../storage/sync-issue-repository";
import { type SyncErrorEntry, type SyncLogEntry, SyncLogRepository } from "../storage/sync-log-repository";
import type { SyncRepository } from "../storage/sync-repository";
import type { Coupling } from "../model/coupling";
import { type MappingDefinition, type MappingName, type UpdateConflictResolution, defaultMappings } from "./default-mappings";
import type { StoredMapping } from "../model/job-entry";
import {
  type CrmRow,
  type CrmSide,
  type ErpSide,
  type Lookups,
  type MissingTarget,
  type PairPlan,
  crmColumns,
  crmRowUnchanged,
  erpIdFor,
  reconcile,
} from "./reconcile";
import { syncMessages } from "../model/sync-plan";
import { type SyncIssue, issueKey, retriedKinds } from "../model/sync-issue";
import { type SyncCounts, emptyCounts } from "../model/sync-plan";

export interface MappingRunOptions {
  runId?: string;
  /** Epoch ms after which no new wave starts; the next run continues from the watermark. */
  deadline?: number;
  /** Full synchronization: ignore watermarks and include uncoupled records. */
  full?: boolean;
  client?: DataverseClient;
  setup?: ConnectionSetup;
  /** Wait for another run of the mapping to finish (full synchronization) instead of giving up at once. */
  waitForLeaseMs?: number;
  /** Stops the run between waves (a test's "crash", or the host shutting down). */
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
  config: Pick<Config, "SYNC_BATCH_SIZE" | "SYNC_MAX_PARALLEL">;
  clock?: () => Date;
  newId?: () => string;
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
  constructor(mapping: string) {
    super(`Another synchronization of ${mapping} is running; this run waits for the next turn.`);
    this.name = "MappingBusyError";
  }
}

const crmPageSize = 5000;
/** Changes are read again from this far before the watermark: stamps of concurrent writers may commit out of order. */
const watermarkLagMs = 2000;
const leaseMs = 10 * 60_000;
const pointReadParallelism = 16;

/** One record pair of a run: what each side is known to be, and where the pair came from. */
interface Pair {
  key: string;
  coupling?: Coupling;
  erp?: VersionedErpRecord | "missing";
  crm?: CrmRow | "deleted" | "unchanged";
  /** The side the change was seen on, for the log's direction. */
  source: "erp" | "crm";
  issue?: SyncIssue;
  /** The record's position in the ERP change feed (the watermark moves past it once it is done). */
  erpStamp?: string;
}

interface Outcome {
  pair: Pair;
  plan: PairPlan;
}

/** What a run (or a targeted synchronization of records) works with. */
interface RunContext {
  company: string;
  name: string;
  runId: string;
  definition: MappingDefinition;
  client: DataverseClient;
  setup: ConnectionSetup;
  byErp: Map<string, Coupling>;
  byCrm: Map<string, Coupling>;
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
}

/**
 * Runs one mapping (BEHAVIOUR §6). Both change feeds (ERP records since the ERP watermark, CRM rows since
 * the CRM watermark), CRM deletions (change tracking) and the retry list become record pairs; each pair is
 * reconciled field by field (reconcile.ts) and the writes go out in bulk. A pair leaves the retry list only
 * when both sides are reconciled, so a watermark never passes a change that was not applied or reported.
 */
export class SyncRunner {
  private readonly clock: () => Date;
  private readonly newId: () => string;
  private readonly owner = `${process.env.WEBSITE_INSTANCE_ID ?? "local"}-${randomUUID().slice(0, 8)}`;

  constructor(private readonly init: SyncRunnerInit) {
    this.clock = init.clock ?? (() => new Date());
    this.newId = init.newId ?? randomUUID;
  }

  async runMapping(company: string, name: string, options: MappingRunOptions = {}): Promise<MappingRunResult> {
    const runId = options.runId ?? randomUUID();
    const lease = await this.acquire(company, name, runId, options.waitForLeaseMs ?? 0);
    try {
      return await this.run(company, name, runId, lease, options);
    } finally {
      await this.release(lease).catch(() => undefined);
    }
  }

  /**
   * Synchronizes the given records now (a user's "Synchronize now", a resolved conflict, a restored skipped
   * record, or the lookup targets a run needs first). Uncoupled records are included.
   */
  async syncRecords(
    company: string,
    name: string,
    selection: RecordSelection,
    options: MappingRunOptions & { depth?: number } = {},
  ): Promise<MappingRunResult> {
    const runId = options.runId ?? randomUUID();
    const lease = await this.acquire(company, name, runId, options.waitForLeaseMs ?? 0);
    try {
      const context = {
        ...(await this.context(company, name, runId, lease.state, { ...options, full: true }, selection.resolution, options.depth ?? 0)),
        targeted: true,
      };
      const started = this.clock();
      const pairs = await this.pairsOf(context, selection);
      if (selection.direction) {
        // One way, as if newly coupled: every field that differs takes the chosen side's value.
        context.definition = { ...context.definition, direction: selection.direction };
        for (const pair of pairs) {
          if (!pair.coupling) continue;
          const { synced: _synced, ...rest } = pair.coupling;
          pair.coupling = rest;
        }
      }
      await this.process(context, pairs, lease, undefined);
      const logs = await this.writeLogs(context, started, false);
      return { mapping: name, runId, logs, stoppedEarly: false };
    } finally {
      await this.release(lease).catch(() => undefined);
    }
  }

  // ---------- the run ----------

  private async run(company: string, name: string, runId: string, lease: Lease, options: MappingRunOptions): Promise<MappingRunResult> {
    // Couplings are read only when there is something to do: a run with no changes costs the same at any size.
    const context = await this.context(company, name, runId, lease.state, { ...options, withoutCouplings: true }, undefined, 0);
    const startedAt = Date.now();
    const before = { ...context.client.stats };
    const result = await this.runWith(context, lease, options);
    const counts = (direction: "toCrm" | "fromCrm") => {
      const log = result.logs.find((entry) => entry.direction === direction);
      return (
        log && { inserted: log.inserted, modified: log.modified, deleted: log.deleted, unchanged: log.unchanged, skipped: log.skipped, failed: log.failed }
      );
    };
    const record: SyncRunRecord = {
      event: "sync-run",
      company,
      mapping: name,
      runId,
      full: options.full === true,
      durationMs: Date.now() - startedAt,
      stoppedEarly: result.stoppedEarly,
      dataverseRequests: context.client.stats.requests - before.requests,
      throttled: context.client.stats.throttled - before.throttled,
      counts: { toCrm: counts("toCrm"), fromCrm: counts("fromCrm") },
    };
    (this.init.log ?? ((line: string) => console.info(line)))(`sync-run ${JSON.stringify(record)}`);
    return result;
  }

  private async runWith(context: RunContext, lease: Lease, options: MappingRunOptions): Promise<MappingRunResult> {
    const { company, name, runId } = context;
    const { definition, client } = context;
    const started = this.clock();
    const full = options.full === true;
    const state = lease.state;

    await options.onProgress?.({ phase: "reading changes", recordsDone: 0 });
    // ERP stamps come from this service's clocks: what is older than the lag when the read starts has committed,
    // so the ERP watermark never passes that point, and is read from as it is.
    context.erpSafePoint = `${new Date(this.clock().getTime() - watermarkLagMs).toISOString()}-000000`;
    const erpSince = full ? undefined : state.erpWatermark;
    // CRM stamps come from Dataverse's clock: rows are read again from the lag before the watermark.
    const crmSince = full || !state.crmWatermark ? undefined : new Date(Date.parse(state.crmWatermark) - watermarkLagMs).toISOString();
    const [erpFeed, crmFeed, delta, issues, lagSeen] = await Promise.all([
      this.init.erpRecords.changedSince(company, definition.erpTable, erpSince),
      definition.direction === "toCrm"
        ? Promise.resolve([] as CrmRow[])
        : client.retrieveMultiple(definition.crmEntitySet, {
            select: crmColumns(definition),
            filter: [definition.crmFilter && `(${definition.crmFilter})`, crmSince && `modifiedon gt ${crmSince}`].filter(Boolean).join(" and ") || undefined,
            orderBy: "modifiedon asc",
            pageSize: crmPageSize,
          }),
      // A delta link Dataverse no longer honours (expired, refused) is replaced by a fresh listing below.
      state.crmDeltaLink
        ? client.trackChanges(definition.crmEntitySet, definition.crmKey, state.crmDeltaLink).catch((error: unknown) => {
            if (error instanceof DataverseRequestError && (error.status === 400 || error.status === 410)) return undefined;
            throw error;
          })
        : Promise.resolve(undefined),
      this.init.issues.list(company, name),
      full ? { erp: [], crm: [] } : this.init.sync.lagSeen(company, name),
    ]);
    // Entries read again only because of the lag, and already processed by the last run, are left out.
    const seenErp = new Set(lagSeen.erp);
    const seenCrm = new Set(lagSeen.crm);
    const erpChanges = erpFeed.filter((change) => !seenErp.has(`${change.id}@${change.modifiedAt}`));
    const crmRows = crmFeed.filter((row) => !seenCrm.has(`${String(row[definition.crmKey]).toLowerCase()}@${String(row.modifiedon)}`));
    const quiet =
      erpChanges.length === 0 && crmRows.length === 0 && (!delta || delta.deleted.length === 0) && !issues.some((issue) => retriedKinds.includes(issue.kind));
    // Where the watermarks move once every change read is done, and what the next run reads again but need not process.
    const advance = () => {
      const lastErp = erpFeed.at(-1)?.modifiedAt;
      const erpWatermark = lastErp ? maxStamp(state.erpWatermark, minStamp(lastErp, context.erpSafePoint)) : state.erpWatermark;
      const lastCrm = crmFeed.at(-1)?.modifiedon;
      const crmWatermark = typeof lastCrm === "string" ? lastCrm : state.crmWatermark;
      const seen = {
        erp: erpWatermark ? erpFeed.filter((change) => change.modifiedAt > erpWatermark).map((change) => `${change.id}@${change.modifiedAt}`) : [],
        crm: crmWatermark
          ? crmFeed
              .filter((row) => Date.parse(String(row.modifiedon)) > Date.parse(crmWatermark) - watermarkLagMs)
              .map((row) => `${String(row[definition.crmKey]).toLowerCase()}@${String(row.modifiedon)}`)
          : [],
      };
      return { erpWatermark, crmWatermark, seen };
    };
    if (quiet && state.crmDeltaLink && delta) {
      const logs = await this.writeLogs(context, started, false);
      // Changes read again within the lag, all processed before: once the lag has passed, the watermark moves past them.
      const { erpWatermark, seen } = advance();
      const moved = erpWatermark !== state.erpWatermark;
      if (moved) await this.init.sync.saveLagSeen(company, name, { erp: seen.erp, crm: lagSeen.crm });
      await lease.save({
        ...(moved && erpWatermark && { erpWatermark }),
        ...(delta && { crmDeltaLink: delta.deltaLink }),
        lastSyncAt: this.clock().toISOString(),
        lastSyncResult: logs.map((log) => `${log.direction === "toCrm" ? "to CRM" : "from CRM"}: ${describeCounts(log)}`).join("; "),
      });
      return { mapping: name, runId, logs, stoppedEarly: false };
    }
    const [couplings, lookups] = await Promise.all([this.init.couplings.load(company, name), this.loadLookups(company, definition)]);
    context.byErp = new Map(couplings.map((coupling) => [coupling.erpId, coupling]));
    context.byCrm = new Map(couplings.map((coupling) => [coupling.crmId.toLowerCase(), coupling]));
    context.lookups = lookups;
    // The first run with couplings lists every row once, to start change tracking (and find rows already gone).
    const tracked = delta ?? (context.byCrm.size > 0 ? await client.trackChanges(definition.crmEntitySet, definition.crmKey) : undefined);

    // CRM rows of coupled records that are gone: from the delta link, or (first time) absent from the full list.
    const deletedCrm = new Set<string>();
    if (tracked) {
      if (tracked.initial) {
        const present = new Set(tracked.present);
        for (const crmId of context.byCrm.keys()) if (!present.has(crmId)) deletedCrm.add(crmId);
      } else for (const crmId of tracked.deleted) if (context.byCrm.has(crmId)) deletedCrm.add(crmId);
    }

    const pairs = new Map<string, Pair>();
    const pairFor = (coupling: Coupling | undefined, erpId: string | undefined, crmId: string | undefined, source: Pair["source"]): Pair => {
      const key = coupling ? `e:${coupling.erpId}` : erpId !== undefined ? `e:${erpId}` : `c:${crmId}`;
      let pair = pairs.get(key);
      if (!pair) {
        pair = { key, source, ...(coupling && { coupling }) };
        pairs.set(key, pair);
      }
      return pair;
    };
    // The retry list first, then deletions, then the ERP feed in stamp order, then CRM rows in modifiedon order.
    const heldBack = new Map(issues.filter((issue) => !retriedKinds.includes(issue.kind)).map((issue) => [`${issue.side}:${issue.sourceId}`, issue]));
    for (const issue of issues) {
      if (!retriedKinds.includes(issue.kind)) continue;
      const coupling = issue.side === "erp" ? context.byErp.get(issue.sourceId) : context.byCrm.get(issue.sourceId);
      const pair = pairFor(
        coupling,
        issue.side === "erp" ? issue.sourceId : coupling?.erpId,
        issue.side === "crm" ? issue.sourceId : undefined,
        issue.direction === "toCrm" ? "erp" : "crm",
      );
      pair.issue = issue;
    }
    for (const crmId of deletedCrm) pairFor(context.byCrm.get(crmId), undefined, crmId, "crm").crm = "deleted";
    for (const change of erpChanges) {
      const pair = pairFor(context.byErp.get(change.id), change.id, undefined, "erp");
      pair.erp = change;
      pair.erpStamp = change.modifiedAt;
    }
    const integrationUserId = (context.setup.connectionUserId ?? (await client.whoAmI()).UserId).toLowerCase();
    for (const row of crmRows) {
      const crmId = String(row[definition.crmKey]).toLowerCase();
      if (deletedCrm.has(crmId)) continue;
      const coupling = context.byCrm.get(crmId);
      // An uncoupled row the integration user wrote last belongs to another ERP company synchronized with this
      // organization (or to a run that crashed before its coupling, which a pending coupling covers): not ours.
      if (!coupling && String(row._modifiedby_value ?? "").toLowerCase() === integrationUserId) continue;
      // A coupled row with nothing new (the last run's own write, read back) needs no ERP read, unless the pair is here anyway.
      if (
        coupling &&
        !pairs.has(`e:${coupling.erpId}`) &&
        !heldBack.has(`erp:${coupling.erpId}`) &&
        !heldBack.has(`crm:${crmId}`) &&
        crmRowUnchanged(definition, coupling, row, context.lookups)
      )
        continue;
      const pair = pairFor(coupling, coupling?.erpId, crmId, "crm");
      if (pair.crm !== "deleted") pair.crm = row;
    }
    // Skipped records and open conflicts seen in the feeds keep their row (a skipped one is not even tried).
    for (const pair of pairs.values()) pair.issue ??= issueOf(pair, heldBack);
    await this.complete(context, [...pairs.values()]);

    const ordered = [...pairs.values()];
    await options.onProgress?.({ phase: "synchronizing", recordsDone: 0, recordsTotal: ordered.length });
    const { stoppedEarly } = await this.process(context, ordered, lease, options);
    if (!stoppedEarly) {
      const { erpWatermark, crmWatermark, seen } = advance();
      await this.init.sync.saveLagSeen(company, name, seen);
      await lease.save({
        ...(erpWatermark && { erpWatermark }),
        ...(crmWatermark && { crmWatermark }),
        ...(tracked && { crmDeltaLink: tracked.deltaLink }),
      });
    }
    await options.onProgress?.({ phase: "writing the log", recordsDone: ordered.length, recordsTotal: ordered.length });
    const logs = await this.writeLogs(context, started, stoppedEarly);
    const summary = logs.map((log) => `${log.direction === "toCrm" ? "to CRM" : "from CRM"}: ${describeCounts(log)}`).join("; ");
    await lease.save({ lastSyncAt: this.clock().toISOString(), lastSyncResult: summary });
    return { mapping: name, runId, logs, stoppedEarly };
  }

  private async context(
    company: string,
    name: string,
    runId: string,
    state: StoredMapping,
    options: MappingRunOptions & { withoutCouplings?: boolean },
    resolution: UpdateConflictResolution | undefined,
    depth: number,
  ): Promise<RunContext> {
    const definition = JSON.parse(state.definitionJson) as MappingDefinition;
    const setup = options.setup ?? (await this.init.setups.get(company))?.value;
    if (!setup) throw new Error(`Company ${company} has no connection setup.`);
    const client = options.client ?? (await this.init.connector.client(setup));
    const [couplings, lookups] = options.withoutCouplings
      ? [[], {}]
      : await Promise.all([this.init.couplings.load(company, name), this.loadLookups(company, definition)]);
    return {
      company,
      name,
      runId,
      definition: withResolutionDefaults(definition),
      client,
      setup,
      byErp: new Map(couplings.map((coupling) => [coupling.erpId, coupling])),
      byCrm: new Map(couplings.map((coupling) => [coupling.crmId.toLowerCase(), coupling])),
      lookups,
      counts: { toCrm: emptyCounts(), fromCrm: emptyCounts() },
      errors: { toCrm: [], fromCrm: [] },
      full: options.full === true,
      ...(resolution && { resolution }),
      depth,
      targeted: false,
    };
  }

  /** Pairs for named records: ERP records by id, CRM rows by id (within the mapping's CRM filter). */
  private async pairsOf(context: RunContext, selection: RecordSelection): Promise<Pair[]> {
    const pairs = new Map<string, Pair>();
    for (const erpId of selection.erpIds ?? []) {
      const coupling = context.byErp.get(erpId);
      pairs.set(`e:${erpId}`, { key: `e:${erpId}`, source: "erp", ...(coupling && { coupling }) });
    }
    const crmIds = (selection.crmIds ?? []).map((id) => id.toLowerCase());
    // A coupled row is read as it is; an uncoupled one only if it is within the mapping's CRM filter.
    const coupledIds = crmIds.filter((id) => context.byCrm.has(id));
    const uncoupledIds = crmIds.filter((id) => !context.byCrm.has(id));
    const rows = new Map<string, CrmRow>([
      ...(coupledIds.length > 0 ? await this.crmRowsByIds(context, coupledIds, false) : []),
      ...(uncoupledIds.length > 0 ? await this.crmRowsByIds(context, uncoupledIds, true) : []),
    ]);
    for (const crmId of crmIds) {
      const coupling = context.byCrm.get(crmId);
      const key = coupling ? `e:${coupling.erpId}` : `c:${crmId}`;
      const row = rows.get(crmId);
      if (!coupling && !row) continue; // not there, or outside the mapping's filter
      const pair = pairs.get(key) ?? { key, source: "crm" as const, ...(coupling && { coupling }) };
      pair.crm = row ?? "deleted";
      pairs.set(key, pair);
    }
    const issues = new Map((await this.init.issues.list(context.company, context.name)).map((issue) => [`${issue.side}:${issue.sourceId}`, issue]));
    for (const pair of pairs.values()) pair.issue ??= issueOf(pair, issues);
    const list = [...pairs.values()];
    await this.complete(context, list, true);
    return list;
  }

  /**
   * Fills in what each pair still needs: the ERP record of a CRM change, the CRM row of a retried record
   * (fetched fresh, in bulk), the ERP record a new CRM row matches (same email, same number).
   */
  private async complete(context: RunContext, pairs: Pair[], fetchCrm = false): Promise<void> {
    const { definition } = context;
    const needErp = pairs.filter((pair) => pair.erp === undefined && (pair.coupling || pair.key.startsWith("e:")));
    await mapLimit(needErp, pointReadParallelism, async (pair) => {
      const erpId = pair.coupling?.erpId ?? pair.key.slice(2);
      pair.erp = (await this.init.erpRecords.get(context.company, definition.erpTable, erpId)) ?? "missing";
    });
    const needCrm = pairs.filter(
      (pair) =>
        pair.crm === undefined &&
        (pair.issue ||
          fetchCrm ||
          (pair.coupling &&
            definition.deletionConflictResolution === "restoreRecords" &&
            pair.erp !== undefined &&
            pair.erp !== "missing" &&
            pair.erp.deleted)),
    );
    const crmIds = needCrm
      .map((pair) => pair.coupling?.crmId ?? (pair.key.startsWith("c:") ? pair.key.slice(2) : undefined))
      .filter((id): id is string => id !== undefined);
    if (crmIds.length > 0) {
      const rows = await this.crmRowsByIds(context, crmIds, false);
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
      const rows = await this.crmRowsByIds(
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
    const coupledErpIds = new Set(context.byErp.keys());
    let byMatch: Map<string, VersionedErpRecord> | undefined;
    if (definition.matchOn && definition.matchOn.erp !== "id") {
      byMatch = new Map();
      for (const record of await this.init.erpRecords.changedSince(context.company, definition.erpTable, undefined)) {
        const value = record.fields[definition.matchOn.erp];
        if (!record.deleted && !coupledErpIds.has(record.id) && typeof value === "string" && value !== "") byMatch.set(value.toLowerCase(), record);
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
          if (coupledErpIds.has(candidate)) continue;
          const found = await this.init.erpRecords.get(context.company, definition.erpTable, candidate);
          if (found && !found.deleted) {
            record = found;
            break;
          }
          // A deleted record under the id the new record will get: it is written over (restored), not created.
          if (found?.deleted && candidate === candidates[0]) pair.erp = found;
        }
      }
      if (record && !coupledErpIds.has(record.id)) {
        coupledErpIds.add(record.id);
        // A match is a new coupling with no common past: the mapping's main direction settles differences.
        pair.coupling = { erpId: record.id, crmId, pending: false };
        pair.erp = record;
      }
    });
  }

  private async crmRowsByIds(context: RunContext, crmIds: string[], withFilter: boolean): Promise<Map<string, CrmRow>> {
    const { definition, client } = context;
    const rows = await client.retrieveByIds(definition.crmEntitySet, definition.crmKey, crmIds, {
      select: crmColumns(definition),
      ...(withFilter && definition.crmFilter && { filter: definition.crmFilter }),
    });
    return new Map(rows.map((row) => [String(row[definition.crmKey]).toLowerCase(), row]));
  }

  // ---------- planning and writing, wave by wave ----------

  private async process(context: RunContext, pairs: Pair[], lease: Lease, options: MappingRunOptions | undefined): Promise<{ stoppedEarly: boolean }> {
    const waveSize = this.init.config.SYNC_BATCH_SIZE * Math.max(1, this.init.config.SYNC_MAX_PARALLEL);
    // The ERP watermark may move only past a prefix of the feed (in stamp order) that is entirely done:
    // retried records come first, so the waves are not in stamp order.
    const stamped = pairs.filter((pair) => pair.erpStamp !== undefined).sort((a, b) => (a.erpStamp! < b.erpStamp! ? -1 : a.erpStamp! > b.erpStamp! ? 1 : 0));
    const done = new Set<Pair>();
    let prefix = 0;
    for (let start = 0; start < pairs.length; start += waveSize) {
      if (options?.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error("The run was stopped.");
      if (options?.deadline !== undefined && Date.now() >= options.deadline) return { stoppedEarly: true };
      const wave = pairs.slice(start, start + waveSize);
      let outcomes = wave.map((pair) => ({ pair, plan: this.plan(context, pair) }));
      outcomes = await this.resolveLookupTargets(context, outcomes);
      await this.apply(context, outcomes);
      for (const pair of wave) done.add(pair);
      await options?.onProgress?.({ phase: "synchronizing", recordsDone: Math.min(start + waveSize, pairs.length), recordsTotal: pairs.length });
      const before = prefix;
      while (prefix < stamped.length && done.has(stamped[prefix]!)) prefix++;
      if (options && !options.full && prefix > before && start + waveSize < pairs.length)
        await lease.save({ erpWatermark: minStamp(stamped[prefix - 1]!.erpStamp!, context.erpSafePoint) });
      else await lease.renew();
    }
    return { stoppedEarly: false };
  }

  private plan(context: RunContext, pair: Pair): PairPlan {
    const { definition } = context;
    const erp: ErpSide | undefined =
      pair.erp === undefined ? undefined : pair.erp === "missing" || pair.erp.deleted ? { kind: "deleted" } : { kind: "present", fields: pair.erp.fields };
    const crm: CrmSide | undefined =
      pair.crm === undefined
        ? undefined
        : pair.crm === "deleted"
          ? { kind: "deleted" }
          : pair.crm === "unchanged"
            ? { kind: "unchanged" }
            : { kind: "present", row: pair.crm };
    if (pair.issue?.kind === "skipped" && !context.targeted) return { action: "skip", reason: pair.issue.reason };
    if (!pair.coupling && definition.onlyCoupledRecords && !context.full) {
      const present = (pair.erp && pair.erp !== "missing" && !pair.erp.deleted) || (pair.crm && typeof pair.crm === "object");
      return present ? { action: "skip", reason: syncMessages.notCoupled } : { action: "none" };
    }
    return reconcile({
      mapping: definition,
      ...(pair.coupling && { coupling: pair.coupling }),
      ...(erp && { erp }),
      ...(crm && { crm }),
      lookups: context.lookups,
      ...(context.resolution && { resolution: context.resolution }),
    });
  }

  /**
   * Records deferred for a lookup whose target is not coupled: the targets are synchronized first where
   * their mapping allows (once, not recursively), then the records are planned again.
   */
  private async resolveLookupTargets(context: RunContext, outcomes: Outcome[]): Promise<Outcome[]> {
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
      if (mapping === context.name || !(await this.init.sync.mapping(context.company, mapping))) continue;
      try {
        await this.syncRecords(
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
    context.lookups = await this.loadLookups(context.company, context.definition);
    return outcomes.map((outcome) => (outcome.plan.action === "defer" ? { pair: outcome.pair, plan: this.plan(context, outcome.pair) } : outcome));
  }

  private async apply(context: RunContext, outcomes: Outcome[]): Promise<void> {
    const { company, name, definition } = context;
    const couplingUpdates = new Map<string, Coupling>();
    const couplingRemovals: string[] = [];
    const issueUpdates: SyncIssue[] = [];
    const issueRemovals: { side: SyncIssue["side"]; sourceId: string }[] = [];
    const replaced: { id: string; modifiedAt: string }[] = [];
    const now = this.clock().toISOString();
    const direction = (pair: Pair): "toCrm" | "fromCrm" => (pair.source === "erp" ? "toCrm" : "fromCrm");
    const sourceIds = idsOf;
    const resolved = (pair: Pair) => {
      if (pair.issue) issueRemovals.push({ side: pair.issue.side, sourceId: pair.issue.sourceId });
    };
    const report = (pair: Pair, kind: SyncIssue["kind"], reason: string, extra: Partial<SyncIssue> = {}, towards?: "toCrm" | "fromCrm") => {
      const ids = sourceIds(pair);
      const dir = towards ?? direction(pair);
      const attempts = (pair.issue?.attempts ?? 0) + (kind === "failed" ? 1 : 0);
      const finalKind = kind === "failed" && attempts >= definition.maxAttempts ? "skipped" : kind;
      context.counts[dir].failed++;
      context.errors[dir].push({
        sourceId: dir === "toCrm" ? (ids.erpId ?? ids.sourceId) : (ids.crmId ?? ids.sourceId),
        ...((dir === "toCrm" ? ids.crmId : ids.erpId) && { destinationId: (dir === "toCrm" ? ids.crmId : ids.erpId)! }),
        reason,
      });
      if (pair.issue && pair.issue.side !== ids.side) issueRemovals.push({ side: pair.issue.side, sourceId: pair.issue.sourceId });
      issueUpdates.push({
        id: issueKey(name, ids.side, ids.sourceId),
        company,
        mapping: name,
        side: ids.side,
        sourceId: ids.sourceId,
        ...(ids.erpId !== undefined && { erpId: ids.erpId }),
        ...(ids.crmId !== undefined && { crmId: ids.crmId }),
        kind: finalKind,
        attempts,
        reason,
        direction: dir,
        firstAt: pair.issue?.firstAt ?? now,
        lastAt: now,
        runId: context.runId,
        ...extra,
      });
    };

    const writes: { pair: Pair; plan: Extract<PairPlan, { action: "write" }>; crmId?: string; erpId?: string; crmOk: boolean; erpOk: boolean }[] = [];
    for (const { pair, plan } of outcomes) {
      switch (plan.action) {
        case "none":
          resolved(pair);
          break;
        case "skip":
          context.counts[direction(pair)].skipped++;
          if (pair.issue?.kind !== "skipped") resolved(pair);
          break;
        case "defer":
          report(pair, "deferred", plan.reason, {}, plan.missing[0]!.erpCode !== undefined ? "toCrm" : "fromCrm");
          break;
        case "fail":
          // A deletion: noticed on the side where the row is gone.
          report(
            pair,
            "failed",
            plan.reason,
            {},
            pair.crm === "deleted" ? "fromCrm" : pair.erp === "missing" || pair.erp?.deleted === true ? "toCrm" : undefined,
          );
          break;
        case "conflict":
          report(pair, "conflict", plan.reason, { conflicts: plan.conflicts });
          break;
        case "removeCoupling": {
          const coupling = pair.coupling!;
          couplingRemovals.push(coupling.erpId);
          context.byErp.delete(coupling.erpId);
          context.byCrm.delete(coupling.crmId.toLowerCase());
          context.counts[pair.crm === "deleted" ? "fromCrm" : "toCrm"].deleted++;
          resolved(pair);
          break;
        }
        case "write":
          writes.push({ pair, plan, crmOk: true, erpOk: true });
          break;
      }
    }

    // CRM creates get their id before the write, recorded as a pending coupling: a rerun after a crash upserts the same row.
    const pending: Coupling[] = [];
    for (const write of writes) {
      if (!write.plan.createCrm) continue;
      const crmId = String(write.plan.toCrm![definition.crmKey] ?? write.pair.coupling?.crmId ?? this.newId()).toLowerCase();
      write.plan.toCrm![definition.crmKey] = crmId;
      write.crmId = crmId;
      const erpId = sourceIds(write.pair).erpId!;
      if (!write.pair.coupling?.pending || write.pair.coupling.crmId !== crmId) pending.push({ erpId, crmId, pending: true });
    }
    if (pending.length > 0) await this.init.couplings.save(company, name, pending);

    const crmFailures = await this.writeCrm(
      context,
      writes.filter((write) => write.plan.toCrm),
    );
    // Columns Dataverse takes only in an update go right after their row was created.
    const followUps = writes
      .filter((write) => write.plan.afterCreate && !crmFailures.has(write))
      .map((write) => ({
        write,
        plan: { ...write.plan, createCrm: false, toCrm: { ...write.plan.afterCreate, [definition.crmKey]: write.plan.toCrm![definition.crmKey] } },
      }));
    for (const [followUp, reason] of await this.writeCrm(context, followUps)) crmFailures.set(followUp.write, reason);
    for (const write of writes) {
      const failure = crmFailures.get(write);
      if (failure) {
        write.crmOk = false;
        report(write.pair, "failed", failure, {}, "toCrm");
      }
    }
    const erpFailures = await this.writeErp(
      context,
      writes.filter((write) => write.crmOk && write.plan.toErp),
    );
    for (const write of writes) {
      if (!write.crmOk) continue;
      const failure = erpFailures.get(write);
      if (failure) {
        write.erpOk = false;
        report(write.pair, failure.race ? "deferred" : "failed", failure.reason, {}, "fromCrm");
      }
    }

    for (const write of writes) {
      if (!write.crmOk) continue;
      const { pair, plan } = write;
      const ids = sourceIds(pair);
      const erpId = write.erpId ?? ids.erpId!;
      const crmId = (write.crmId ?? ids.crmId!).toLowerCase();
      // A new ERP record that could not be written makes no coupling; the CRM row is tried again.
      if (!write.erpOk && plan.createErp) continue;
      // What the ERP did not take keeps its old synchronized value, so the change is seen again.
      const synced = { ...plan.synced };
      if (!write.erpOk) {
        for (const key of Object.keys(plan.toErp ?? {})) {
          if (pair.coupling?.synced && key in pair.coupling.synced) synced[key] = pair.coupling.synced[key];
          else delete synced[key];
        }
      }
      const before = pair.coupling;
      const erpModifiedAt = pair.erpStamp ?? before?.erpModifiedAt;
      const coupling: Coupling = { erpId, crmId, pending: false, synced, ...(erpModifiedAt && { erpModifiedAt }) };
      // The change row of the record's last synchronized state is replaced by the one just processed.
      if (pair.erpStamp && before?.erpModifiedAt && before.erpModifiedAt < pair.erpStamp) replaced.push({ id: erpId, modifiedAt: before.erpModifiedAt });
      const changed =
        !before ||
        before.pending ||
        before.crmId.toLowerCase() !== crmId ||
        before.erpModifiedAt !== erpModifiedAt ||
        JSON.stringify(before.synced) !== JSON.stringify(synced);
      if (changed) couplingUpdates.set(erpId, coupling);
      context.byErp.set(erpId, coupling);
      context.byCrm.set(crmId, coupling);
      if (write.erpOk) resolved(pair);
      const toCrmColumns = Object.keys(plan.toCrm ?? {}).filter((column) => column !== definition.crmKey);
      if (plan.createCrm) context.counts.toCrm.inserted++;
      else if (toCrmColumns.length > 0) context.counts.toCrm.modified++;
      if (write.erpOk && plan.toErp) {
        if (plan.createErp) context.counts.fromCrm.inserted++;
        else context.counts.fromCrm.modified++;
      }
      if (!plan.createCrm && !plan.createErp && toCrmColumns.length === 0 && !plan.toErp) context.counts[direction(pair)].unchanged++;
    }

    await this.init.couplings.save(company, name, [...couplingUpdates.values()]);
    await this.init.erpRecords.forgetChanges(company, definition.erpTable, replaced);
    if (couplingRemovals.length > 0) await this.init.couplings.remove(company, name, couplingRemovals);
    const updatedKeys = new Set(issueUpdates.map((issue) => `${issue.side}~${issue.sourceId}`));
    await this.init.issues.save(company, name, issueUpdates);
    await this.init.issues.remove(company, name, dedupe(issueRemovals.filter((key) => !updatedKeys.has(`${key.side}~${key.sourceId}`))));
  }

  /**
   * Creates as UpsertMultiple with the ids chosen up front, updates as UpdateMultiple (only the changed
   * columns); chunks run in parallel. A chunk Dataverse refuses is retried row by row to find the failing
   * rows; throttling and outages propagate (the run fails and is retried later).
   */
  private async writeCrm<T extends { plan: Extract<PairPlan, { action: "write" }> }>(context: RunContext, writes: T[]): Promise<Map<T, string>> {
    const { definition, client } = context;
    const size = this.init.config.SYNC_BATCH_SIZE;
    const chunks: { create: boolean; writes: T[] }[] = [];
    for (const create of [true, false]) {
      const selected = writes.filter(
        (write) => write.plan.createCrm === create && Object.keys(write.plan.toCrm!).some((column) => column !== definition.crmKey || create),
      );
      for (let start = 0; start < selected.length; start += size) chunks.push({ create, writes: selected.slice(start, start + size) });
    }
    const failures = new Map<T, string>();
    await Promise.all(
      chunks.map(async (chunk) => {
        try {
          if (chunk.create)
            await client.upsertMultiple(
              definition.crmEntitySet,
              chunk.writes.map((write) => write.plan.toCrm!),
            );
          else
            await client.updateMultiple(
              definition.crmEntitySet,
              chunk.writes.map((write) => write.plan.toCrm!),
            );
        } catch (error) {
          if (!isRowError(error)) throw error;
          await mapLimit(chunk.writes, 4, async (write) => {
            const { [definition.crmKey]: id, ...values } = write.plan.toCrm!;
            try {
              if (chunk.create) await client.upsert(definition.crmEntitySet, String(id), values);
              else await client.update(definition.crmEntitySet, String(id), values);
            } catch (single) {
              if (!isRowError(single)) throw single;
              failures.set(
                write,
                single instanceof DataverseRequestError && single.status === 404
                  ? syncMessages.coupledToDeletedCrm(definition.crmEntitySet)
                  : (single as Error).message,
              );
            }
          });
        }
      }),
    );
    return failures;
  }

  /** ERP writes: each only if the record did not change since it was read (a race is retried, not lost). */
  private async writeErp<T extends { pair: Pair; plan: Extract<PairPlan, { action: "write" }>; erpId?: string }>(
    context: RunContext,
    writes: T[],
  ): Promise<Map<T, { reason: string; race: boolean }>> {
    const { definition, company } = context;
    const schema = erpSchemas[definition.erpTable];
    const failures = new Map<T, { reason: string; race: boolean }>();
    const prepared: { write: T; fields: ErpFields; basedOn?: SyncWrite["basedOn"] }[] = [];
    for (const write of writes) {
      const current = write.pair.erp && write.pair.erp !== "missing" && !write.pair.erp.deleted ? write.pair.erp : undefined;
      const merged: Record<string, unknown> = { ...(write.plan.createErp ? {} : (current?.fields ?? {})) };
      for (const [key, value] of Object.entries(write.plan.toErp!)) {
        if (value === null || value === undefined) delete merged[key];
        else merged[key] = value;
      }
      const parsed = schema.safeParse(merged);
      if (!parsed.success) {
        failures.set(write, { reason: parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; "), race: false });
        continue;
      }
      write.erpId = (parsed.data as ErpFields).id;
      const read = write.pair.erp && write.pair.erp !== "missing" ? write.pair.erp : undefined;
      const basedOn = read && { modifiedAt: read.modifiedAt, ...(read.etag && { etag: read.etag }) };
      prepared.push({ write, fields: parsed.data as ErpFields, ...(basedOn && { basedOn }) });
    }
    const { conflicts } = await this.init.erpRecords.writeFromSync(
      company,
      definition.erpTable,
      prepared.map(({ fields, basedOn }) => ({ fields, ...(basedOn && { basedOn }) })),
    );
    const lost = new Set(conflicts);
    for (const { write, fields, basedOn } of prepared) {
      if (!lost.has(fields.id)) continue;
      // Read before, the record changed meanwhile (a race, retried); not read, a record with that id exists.
      if (basedOn)
        failures.set(write, { reason: "The ERP record changed while it was being synchronized; it is synchronized again on the next run.", race: true });
      else
        failures.set(write, {
          reason:
            `An ERP ${definition.erpTable} record with the id ${fields.id} exists already and is not coupled to this CRM row. Couple them by ` +
            `hand or change one of the ids.`,
          race: false,
        });
    }
    return failures;
  }

  private async writeLogs(context: RunContext, started: Date, stoppedEarly: boolean): Promise<SyncLogEntry[]> {
    const logs: SyncLogEntry[] = [];
    const directions: ("toCrm" | "fromCrm")[] = context.definition.direction === "both" ? ["toCrm", "fromCrm"] : [context.definition.direction];
    for (const direction of directions) {
      const counts = context.counts[direction];
      const finished = this.clock();
      const log: SyncLogEntry = {
        id: SyncLogRepository.newLogId(started, context.runId + (context.depth > 0 ? `-${context.name.replace(/[^A-Z0-9]+/gi, "")}` : ""), direction),
        runId: context.runId,
        mapping: context.name,
        direction,
        startedAt: started.toISOString(),
        finishedAt: finished.toISOString(),
        ...counts,
        message: stoppedEarly
          ? "The run stopped at its time budget; the next run continues where it stopped."
          : counts.failed > 0
            ? `${counts.failed} record(s) failed; see the errors of this run.`
            : "Completed.",
      };
      await this.init.logs.write(context.company, log, context.errors[direction]);
      logs.push(log);
    }
    return logs;
  }

  private async loadLookups(company: string, definition: MappingDefinition): Promise<Lookups> {
    const names = [...new Set(definition.fields.flatMap((field) => (field.lookup ? [field.lookup.mapping] : [])))];
    const optionTables = [...new Set(definition.fields.flatMap((field) => (field.option ? [field.option] : [])))];
    const lookups: Lookups = {};
    await Promise.all(
      optionTables.map(async (table) => {
        const codes = (await this.init.erpRecords.changedSince(company, table)).filter(
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
        const couplings = (await this.init.couplings.load(company, mapping)).filter((coupling) => !coupling.pending);
        lookups[mapping] = {
          toCrm: new Map(couplings.map((coupling) => [coupling.erpId, coupling.crmId.toLowerCase()])),
          toErp: new Map(couplings.map((coupling) => [coupling.crmId.toLowerCase(), coupling.erpId])),
        };
      }),
    );
    return lookups;
  }

  // ---------- the mapping's lease ----------

  private async acquire(company: string, name: string, runId: string, waitMs: number): Promise<Lease> {
    const until = Date.now() + waitMs;
    for (;;) {
      const stored = await this.init.sync.mapping(company, name);
      if (!stored) throw new Error(`Company ${company} has no mapping ${name}.`);
      const now = this.clock().getTime();
      const held =
        stored.value.runLeaseOwner && stored.value.runLeaseOwner !== this.leaseOwner(runId) && Date.parse(stored.value.runLeaseExpiresAt ?? "") > now;
      if (!held) {
        const state: StoredMapping = { ...stored.value, runLeaseOwner: this.leaseOwner(runId), runLeaseExpiresAt: new Date(now + leaseMs).toISOString() };
        try {
          const etag = await this.init.sync.saveMapping(state, stored.etag);
          return new Lease(this.init.sync, state, etag, () => this.clock().getTime());
        } catch (error) {
          if (!(error instanceof ConcurrencyError)) throw error;
        }
      }
      if (Date.now() >= until) throw new MappingBusyError(name);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  private leaseOwner(runId: string): string {
    return `${this.owner}/${runId}`;
  }

  private async release(lease: Lease): Promise<void> {
    await lease.save({ runLeaseOwner: undefined, runLeaseExpiresAt: undefined });
  }
}

/** A run's hold on its mapping row; every save renews it and goes through the row's ETag. */
class Lease {
  constructor(
    private readonly sync: SyncRepository,
    public state: StoredMapping,
    private etag: string,
    private readonly now: () => number,
  ) {}

  /**
   * Saves the run's changes (watermarks, lease). An admin may change the mapping's settings meanwhile: the
   * row is read again and the run's changes applied over it, as long as this run still holds the lease.
   */
  async save(change: Partial<StoredMapping>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const next: StoredMapping = { ...this.state, ...change };
      if (next.runLeaseOwner) next.runLeaseExpiresAt = new Date(this.now() + leaseMs).toISOString();
      for (const [key, value] of Object.entries(change)) if (value === undefined) delete (next as unknown as Record<string, unknown>)[key];
      try {
        this.etag = await this.sync.saveMapping(next, this.etag);
        this.state = next;
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt >= 4) throw error;
        const latest = await this.sync.mapping(this.state.company, this.state.name);
        if (!latest || latest.value.runLeaseOwner !== this.state.runLeaseOwner) throw new MappingBusyError(this.state.name);
        const { definitionJson } = latest.value;
        this.state = { ...this.state, definitionJson };
        this.etag = latest.etag;
      }
    }
  }

  renew(): Promise<void> {
    return this.save({});
  }
}

/** The ids a pair is known by: its ERP id (coupled, or an ERP record) or else its CRM id, and the side that names it. */
function idsOf(pair: Pair): { erpId?: string; crmId?: string; side: SyncIssue["side"]; sourceId: string } {
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
function issueOf(pair: Pair, issues: Map<string, SyncIssue>): SyncIssue | undefined {
  const { erpId, crmId } = idsOf(pair);
  return (erpId !== undefined ? issues.get(`erp:${erpId}`) : undefined) ?? (crmId !== undefined ? issues.get(`crm:${crmId.toLowerCase()}`) : undefined);
}

/** Default mappings stored before the conflict settings existed get BC's defaults. */
function withResolutionDefaults(definition: MappingDefinition): MappingDefinition {
  const fallback = defaultMappings.find((mapping) => mapping.name === definition.name);
  return {
    ...definition,
    updateConflictResolution: definition.updateConflictResolution ?? "none",
    deletionConflictResolution: definition.deletionConflictResolution ?? "none",
    maxAttempts: definition.maxAttempts ?? fallback?.maxAttempts ?? 5,
  };
}

function minStamp(a: string, b: string | undefined): string {
  return b !== undefined && b < a ? b : a;
}

function maxStamp(a: string | undefined, b: string): string {
  return a !== undefined && a > b ? a : b;
}

/** Errors that belong to rows (bad data, a deleted row) rather than to the service. */
function isRowError(error: unknown): boolean {
  return (
    error instanceof DataverseRequestError && error.status >= 400 && error.status < 500 && error.status !== 401 && error.status !== 403 && error.status !== 429
  );
}

async function mapLimit<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

function dedupe<T extends { side: string; sourceId: string }>(keys: T[]): T[] {
  return [...new Map(keys.map((key) => [`${key.side}~${key.sourceId}`, key])).values()];
}

export function describeCounts(counts: SyncCounts): string {
  return (
    `${counts.inserted} inserted, ${counts.modified} modified, ${counts.deleted} deleted, ${counts.unchanged} unchanged, ${counts.skipped} ` +
    `skipped, ${counts.failed} failed`
  );
}

export type { MissingTarget };
