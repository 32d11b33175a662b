import { randomUUID } from "node:crypto";
import type { StoredMapping } from "../model/job-entry";
import { emptyCounts } from "../model/sync-plan";
import { type MappingDefinition, type UpdateConflictResolution, defaultMappings } from "./default-mappings";
import { completePairs } from "./run/complete-pairs";
import { type ChangeFeeds, advancedWatermarks, crmStampsOf, erpSafePoint, readChanges } from "./run/change-feeds";
import { loadCouplingsBesideFeed, loadCouplingsOf } from "./run/lookups";
import { type Lease, acquireLease } from "./run/mapping-lease";
import { crmDeletions, heldBackIssues, pairsBesideErpFeed, pairsOfSelection } from "./run/record-pairs";
import { wavesOfChanges } from "./run/feed-waves";
import { logRunRecord, summaryOf, writeLogs } from "./run/run-log";
import type { MappingRunOptions, MappingRunResult, RecordSelection, RunContext, RunDeps, SyncRunnerInit } from "./run/run-context";
import { processWaves, waveSizeOf, wavesOf } from "./run/waves";

/**
 * Runs one mapping (BEHAVIOUR §6), as a short sequence of steps in run/: open the ERP feed and read the CRM
 * changes, deletions and retry list, pair what is beside the ERP feed, then plan and write wave by wave as the
 * ERP feed is read (feed-waves.ts cuts and completes the waves; reconcile.ts plans a pair field by field; to-crm.ts
 * and to-erp.ts write in bulk; apply-outcomes.ts keeps couplings, the retry list and counts), move the watermarks
 * and write the log. A pair leaves the retry list only when both sides are reconciled, so a watermark never
 * passes a change that was not applied or reported.
 */
export class SyncRunner {
  private readonly deps: RunDeps;
  private readonly owner = `${process.env.WEBSITE_INSTANCE_ID ?? "local"}-${randomUUID().slice(0, 8)}`;

  constructor(init: SyncRunnerInit) {
    this.deps = {
      init,
      clock: init.clock ?? (() => new Date()),
      syncRecords: (company, name, selection, options) => this.syncRecords(company, name, selection, options),
    };
  }

  async runMapping(company: string, name: string, options: MappingRunOptions = {}): Promise<MappingRunResult> {
    const runId = options.runId ?? randomUUID();
    const lease = await acquireLease(this.deps, `${this.owner}/${runId}`, company, name, options.waitForLeaseMs ?? 0);
    try {
      const context = await this.context(company, name, runId, lease.state, options);
      const measured = {
        full: options.full === true,
        startedAt: Date.now(),
        requestsBefore: context.client.stats.requests,
        throttledBefore: context.client.stats.throttled,
      };
      const result = await this.run(context, lease, options);
      logRunRecord(this.deps, context, result, measured);
      return result;
    } finally {
      await lease.release().catch(() => undefined);
    }
  }

  /**
   * Runs an admin's change of the mapping's couplings (couple, uncouple, match) while holding the mapping as a
   * run does, so it never lands in the middle of a run that has already decided what to do with those records.
   */
  async whileHolding<T>(company: string, name: string, waitForLeaseMs: number, work: () => Promise<T>): Promise<T> {
    const lease = await acquireLease(this.deps, `${this.owner}/admin-${randomUUID()}`, company, name, waitForLeaseMs);
    try {
      return await work();
    } finally {
      await lease.release().catch(() => undefined);
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
    const lease = await acquireLease(this.deps, `${this.owner}/${runId}`, company, name, options.waitForLeaseMs ?? 0);
    try {
      const context: RunContext = {
        ...(await this.context(company, name, runId, lease.state, { ...options, full: true }, selection.resolution, options.depth ?? 0)),
        targeted: true,
      };
      await loadCouplingsOf(this.deps, context, lease, selection);
      const started = this.deps.clock();
      const pairs = await pairsOfSelection(this.deps, context, selection);
      await completePairs(this.deps, context, pairs, true);
      if (selection.direction) {
        // One way, as if newly coupled: every field that differs takes the chosen side's value.
        context.definition = { ...context.definition, direction: selection.direction };
        for (const pair of pairs) {
          if (!pair.coupling) continue;
          const { synced: _synced, ...rest } = pair.coupling;
          pair.coupling = rest;
        }
      }
      await processWaves(this.deps, context, wavesOf(pairs, waveSizeOf(this.deps, context)), lease, options);
      const logs = await writeLogs(this.deps, context, started, false);
      return { mapping: name, runId, logs, stoppedEarly: false };
    } finally {
      await lease.release().catch(() => undefined);
    }
  }

  private async run(context: RunContext, lease: Lease, options: MappingRunOptions): Promise<MappingRunResult> {
    const started = this.deps.clock();
    await options.onProgress?.({ phase: "reading changes", recordsDone: 0 });
    context.erpSafePoint = erpSafePoint(this.deps.clock());
    const feeds = await readChanges(this.deps, context, lease.state);
    try {
      return await this.synchronize(context, lease, options, feeds, started);
    } finally {
      // Pages of the feed being read when a run fails are dropped.
      await feeds.erp.close();
    }
  }

  private async synchronize(context: RunContext, lease: Lease, options: MappingRunOptions, feeds: ChangeFeeds, started: Date): Promise<MappingRunResult> {
    const { deps } = this;
    const { company, name, runId, definition, client } = context;
    const state = lease.state;
    const { erp } = feeds;
    const crmStamps = crmStampsOf(context, feeds.crmFeed);
    if (feeds.quiet && state.crmDeltaLink && feeds.delta) {
      const logs = await writeLogs(deps, context, started, false);
      // Changes read again within the lag, all processed before: once the lag has passed, the watermark moves past them.
      const { erpWatermark, seen } = advancedWatermarks(context, state, erp, crmStamps);
      const moved = erpWatermark !== state.erpWatermark;
      if (moved) await deps.init.sync.saveLagSeen(company, name, { erp: seen.erp, crm: feeds.lagSeen.crm });
      await lease.save({
        ...(moved && erpWatermark && { erpWatermark }),
        crmDeltaLink: feeds.delta.deltaLink,
        lastSyncAt: deps.clock().toISOString(),
        lastSyncResult: summaryOf(logs),
      });
      return { mapping: name, runId, logs, stoppedEarly: false };
    }

    await loadCouplingsBesideFeed(deps, context, lease, feeds);
    // The first run with couplings lists every row once, to start change tracking (and find rows already gone).
    const tracked = feeds.delta ?? (context.byCrm.size > 0 ? await client.trackChanges(definition.crmEntitySet, definition.crmKey) : undefined);
    const heldBack = heldBackIssues(feeds.issues);
    const beside = await pairsBesideErpFeed(context, feeds, crmDeletions(context, tracked), heldBack);
    // From here the pairs beside the feed hold the CRM rows, and the stamps where the CRM watermark goes: the rows read go.
    feeds.crmFeed = [];
    feeds.crmRows = [];

    await options.onProgress?.({ phase: "synchronizing", recordsDone: 0 });
    const { stoppedEarly, recordsDone } = await processWaves(
      deps,
      context,
      wavesOfChanges(deps, context, erp, beside, heldBack, waveSizeOf(deps, context)),
      lease,
      options,
    );
    if (!stoppedEarly) {
      const { erpWatermark, crmWatermark, seen } = advancedWatermarks(context, state, erp, crmStamps);
      await deps.init.sync.saveLagSeen(company, name, seen);
      await lease.save({
        ...(erpWatermark && { erpWatermark }),
        ...(crmWatermark && { crmWatermark }),
        ...(tracked && { crmDeltaLink: tracked.deltaLink }),
      });
    }
    await options.onProgress?.({ phase: "writing the log", recordsDone, recordsTotal: recordsDone });
    const logs = await writeLogs(deps, context, started, stoppedEarly);
    await lease.save({ lastSyncAt: deps.clock().toISOString(), lastSyncResult: summaryOf(logs) });
    return { mapping: name, runId, logs, stoppedEarly };
  }

  private async context(
    company: string,
    name: string,
    runId: string,
    state: StoredMapping,
    options: MappingRunOptions,
    resolution?: UpdateConflictResolution,
    depth = 0,
  ): Promise<RunContext> {
    const { init } = this.deps;
    const definition = JSON.parse(state.definitionJson) as MappingDefinition;
    const setup = options.setup ?? (await init.setups.get(company))?.value;
    if (!setup) throw new Error(`Company ${company} has no connection setup.`);
    const connected = options.client ?? (await init.connector.client(setup));
    const client = options.signal ? connected.withSignal(options.signal) : connected;
    return {
      company,
      name,
      runId,
      definition: withResolutionDefaults(definition),
      client,
      setup,
      // Filled by loadCouplings: a run with no changes never reads them, so it costs the same at any size.
      byErp: new Map(),
      byCrm: new Map(),
      lookups: {},
      counts: { toCrm: emptyCounts(), fromCrm: emptyCounts() },
      errors: { toCrm: [], fromCrm: [] },
      full: options.full === true,
      ...(resolution && { resolution }),
      depth,
      targeted: false,
      issuesWritten: new Map(),
    };
  }
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
