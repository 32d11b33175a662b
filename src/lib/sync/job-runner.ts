// Over 250 lines: claiming, running, rescheduling and the full synchronization's hold share the lease rules (the
// entry's view and PATCH rules are job-view.ts).
import { type JobView, idleState, isHeld, jobPatch, jobView } from "./job-view";
import { randomUUID } from "node:crypto";
import type { Config } from "../config";
import { DataverseRequestError, describeFailure, failureStep } from "../dataverse/dataverse-errors";
import { conflict, fieldErrorsFromZod, invalid, notFound } from "../errors";
import { requireCompany, requireSetup } from "../model/company";
import { ConcurrencyError, type SetupRepository } from "../storage/setup-repository";
import { SyncLogRepository } from "../storage/sync-log-repository";
import type { SyncRepository } from "../storage/sync-repository";
import { WorkQueue, syncMessage } from "../storage/work-queue";
import { type MappingDefinition, defaultMappings } from "./default-mappings";
import type { JobEntry } from "../model/job-entry";
import type { ConnectionSetup } from "../model/connection-setup";
import type { SalesOrderService } from "../sales-orders/sales-order-service";
import type { CustomerStatisticsService } from "../statistics/customer-statistics";
import { emptyCounts } from "../model/sync-plan";
import type { SyncRunner } from "./sync-runner";
import { summaryOf } from "./run/run-log";
import { MappingBusyError, type RunProgress, leaseMsOf } from "./run/run-context";

export type JobRunOutcome = "processed" | "yielded" | "skipped";

export const jobMessages = {
  connectionDisabled: (company: string) =>
    `The connection of company "${company}" is not enabled, so its synchronization jobs cannot run or change state. Enable the connection first.`,
  mappingBusy: "Another synchronization of this mapping was running; the job runs again shortly.",
  shutDown: "The host shut down during the run; the job continues where it stopped on its next run.",
  statusAfterRun: (status: string) => `The job is running; it becomes ${status} when this run ends.`,
} as const;

/**
 * Job-queue entries at run time: timers find the due entries and fan them out through the queue; a worker
 * claims an entry with an ETag-conditional lease (Ready -> In Process), runs it, and sets the next run,
 * counting failed attempts up to Error. A status change never breaks a running lease: Hold or Ready on a
 * running entry is recorded and applied when the run ends.
 */
export class JobRunner {
  private readonly clock: () => Date;
  private readonly owner = `${process.env.WEBSITE_INSTANCE_ID ?? "local"}-${randomUUID().slice(0, 8)}`;

  constructor(
    private readonly init: {
      sync: SyncRepository;
      setups: SetupRepository;
      runner: SyncRunner;
      queue: WorkQueue;
      logs?: SyncLogRepository;
      config: Pick<Config, "SYNC_TIME_BUDGET_SECONDS"> & Partial<Pick<Config, "SYNC_LEASE_SECONDS">>;
      clock?: () => Date;
      /** Runs the sales order jobs (SALES ORDER STATUS, AUTO CREATE SALES ORDERS). */
      salesOrders?: Pick<SalesOrderService, "runJob">;
      /** Runs the CUSTOMER STATISTICS job. */
      statistics?: Pick<CustomerStatisticsService, "runJob">;
      /** Fires when the host shuts down: running synchronizations stop, their Dataverse requests too. */
      shutdown?: AbortSignal;
    },
  ) {
    this.clock = init.clock ?? (() => new Date());
  }

  /** Timer: queue a run for every company whose entry is due (Ready and past its next run, or a lapsed lease). */
  async dispatchDue(jobId: string): Promise<number> {
    const now = this.clock().toISOString();
    const due = await this.init.sync.dueJobs(jobId, now);
    await Promise.all(due.map((company) => this.init.queue.send({ kind: "job", company, job: jobId, runId: randomUUID() })));
    return due.length;
  }

  /** "Run now": queued at once, whatever the schedule says; the entry's status stays as it is. */
  async runNow(company: string, jobId: string): Promise<string> {
    await this.requireEnabled(company);
    await this.requireJob(company, jobId);
    const runId = randomUUID();
    await this.init.queue.send({ kind: "job", company, job: jobId, runId, now: true });
    return runId;
  }

  /** Hold or Ready, as the admin sees the entry afterwards. */
  async setStatus(company: string, jobId: string, status: "On Hold" | "Ready"): Promise<JobView> {
    return jobView(await this.changeStatus(company, jobId, status), this.clock());
  }

  private async changeStatus(company: string, jobId: string, status: "On Hold" | "Ready"): Promise<JobEntry> {
    await this.requireEnabled(company);
    for (;;) {
      const stored = await this.requireJob(company, jobId);
      const current = stored.value;
      const running = current.status === "In Process" && current.leaseExpiresAt !== undefined && Date.parse(current.leaseExpiresAt) > this.clock().getTime();
      const job: JobEntry = running
        ? { ...current, requestedStatus: status }
        : { ...withoutLease(current), status, ...(status === "Ready" && { attempts: 0, nextRunAt: this.clock().toISOString() }) };
      if (!running) delete job.requestedStatus;
      try {
        await this.init.sync.saveJob(job, stored.etag);
        return job;
      } catch (error) {
        // The run claimed or released the entry meanwhile: decide again on what is there now.
        if (!(error instanceof ConcurrencyError)) throw error;
      }
    }
  }

  /**
   * Changes an entry's schedule settings (BC's Job Queue Entry card): minutes between runs, maximum attempts,
   * earliest start (the next run). A running entry keeps its lease; the settings apply from its next run.
   */
  /** A PATCH of the entry's settings (job-view.ts says what may change), as the admin sees the entry afterwards. */
  async update(company: string, jobId: string, body: unknown): Promise<JobView> {
    return jobView(await this.changeSettings(company, jobId, body), this.clock());
  }

  private async changeSettings(company: string, jobId: string, body: unknown): Promise<JobEntry> {
    const input = jobPatch.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    for (;;) {
      const stored = await this.requireJob(company, jobId);
      const { earliestStartAt, ...settings } = input.data;
      const job: JobEntry = { ...stored.value, ...settings, ...(earliestStartAt && { nextRunAt: new Date(earliestStartAt).toISOString() }) };
      // A changed inactivity timeout starts counting afresh.
      if (settings.inactivityTimeoutMinutes !== undefined) {
        delete job.idleSince;
        delete job.sleeping;
      }
      try {
        await this.init.sync.saveJob(job, stored.etag);
        return job;
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
      }
    }
  }

  /** Worker: claim, run, reschedule. Two workers on one entry: one processes, the other yields. */
  async runJob(company: string, jobId: string, runId: string = randomUUID(), force = false): Promise<JobRunOutcome> {
    const stored = await this.init.sync.job(company, jobId);
    const setup = await this.init.setups.get(company);
    if (!stored || !setup?.value.isEnabled) return "skipped";
    const now = this.clock();
    const entry = stored.value;
    if (isHeld(entry, now)) return "yielded";
    const lapsed = entry.status === "In Process" && (!entry.leaseExpiresAt || Date.parse(entry.leaseExpiresAt) < now.getTime());
    const runnable = entry.status === "Ready" || lapsed || (force && entry.status !== "In Process");
    if (!runnable) return "yielded";
    // A forced run ("Run now") leaves the entry in the status it had: On Hold stays On Hold, Error stays Error.
    const statusAfter: JobEntry["status"] = entry.status === "On Hold" || entry.status === "Error" ? entry.status : "Ready";
    const claimed: JobEntry = {
      ...entry,
      status: "In Process",
      leaseOwner: this.owner,
      leaseExpiresAt: new Date(now.getTime() + leaseMsOf(this.init.config)).toISOString(),
    };
    let etag: string;
    try {
      etag = await this.init.sync.saveJob(claimed, stored.etag);
    } catch (error) {
      if (error instanceof ConcurrencyError) return "yielded";
      throw error;
    }
    const heartbeat = this.leaseHeartbeat(company, jobId);

    let next: (latest: JobEntry) => JobEntry;
    try {
      next = await this.runClaimed(company, jobId, runId, claimed, setup.value, now, statusAfter);
    } finally {
      await heartbeat.stop();
    }
    await this.finish(company, jobId, etag, claimed, next);
    return "processed";
  }

  /** Runs a claimed entry; answers how its row changes when the run is over. */
  private async runClaimed(
    company: string,
    jobId: string,
    runId: string,
    claimed: JobEntry,
    setup: ConnectionSetup,
    now: Date,
    statusAfter: JobEntry["status"],
  ): Promise<(latest: JobEntry) => JobEntry> {
    const budgetMs = this.init.config.SYNC_TIME_BUDGET_SECONDS * 1000;
    let next: (latest: JobEntry) => JobEntry;
    try {
      let result: string;
      let stoppedEarly = false;
      let active = false;
      if (claimed.kind === "statistics") {
        if (!this.init.statistics) throw new Error("Customer statistics are not available in this process.");
        const run = await this.init.statistics.runJob(company, runId);
        active = run.written + run.failed > 0;
        result = `${run.written} account statistics written, ${run.failed} failed`;
      } else if (claimed.kind === "orderStatus" || claimed.kind === "autoCreateOrders") {
        if (!this.init.salesOrders) throw new Error("Sales order integration is not available in this process.");
        const run = await this.init.salesOrders.runJob(company, runId, claimed.kind === "autoCreateOrders" ? "create" : "status");
        active = run.created + run.statusesReported + run.failed > 0;
        result = `${run.created} order(s) created, ${run.statusesReported} status(es) reported, ${run.failed} failed`;
      } else {
        const progress = this.progressReporter(company, jobId, runId);
        const run = await this.init.runner
          .runMapping(company, jobId, {
            runId,
            budget: AbortSignal.timeout(budgetMs),
            ...(this.init.shutdown && { signal: this.init.shutdown }),
            setup,
            onProgress: progress.report,
          })
          .finally(progress.stop);
        stoppedEarly = run.stoppedEarly;
        active = run.logs.some((log) => log.inserted + log.modified + log.deleted + log.failed > 0);
        result = summaryOf(run.logs);
      }
      const finished = this.clock();
      next = (latest) => {
        const idle = idleState(latest, active || stoppedEarly, now, finished);
        const waitMinutes = stoppedEarly ? 0 : idle.sleeping ? latest.inactivityTimeoutMinutes! : claimed.minutesBetweenRuns;
        const done: JobEntry = {
          ...withoutLease(latest),
          status: latest.requestedStatus ?? statusAfter,
          attempts: 0,
          lastRunAt: finished.toISOString(),
          nextRunAt: new Date(finished.getTime() + waitMinutes * 60_000).toISOString(),
          lastResult: result,
          ...idle,
        };
        if (!idle.idleSince) delete done.idleSince;
        if (!idle.sleeping) delete done.sleeping;
        delete done.lastError;
        return done;
      };
    } catch (error) {
      const finished = this.clock();
      const shutDown = this.init.shutdown?.aborted === true;
      const reason = error instanceof MappingBusyError ? jobMessages.mappingBusy : shutDown ? jobMessages.shutDown : describeFailure(error);
      if (error instanceof MappingBusyError || shutDown || failureStep(error) === "throttled") {
        // Dataverse asking to wait, another run of the mapping, or the host going away: not a failure, no attempt counted.
        const wait =
          error instanceof DataverseRequestError && error.retryAfterMs
            ? error.retryAfterMs
            : error instanceof MappingBusyError && error.heldUntil
              ? // Tried again when the other run's hold lapses: at once if that run died, later if it renewed it.
                Math.min(claimed.rerunDelaySeconds * 1000, Math.max(0, error.heldUntil.getTime() - finished.getTime()) + 1000)
              : claimed.rerunDelaySeconds * 1000;
        next = (latest) => ({
          ...withoutLease(latest),
          status: latest.requestedStatus ?? statusAfter,
          lastRunAt: finished.toISOString(),
          nextRunAt: new Date(finished.getTime() + wait).toISOString(),
          lastError: reason,
        });
      } else {
        await this.logFailure(company, jobId, runId, now, reason);
        const attempts = claimed.attempts + 1;
        const exhausted = attempts >= claimed.maxAttempts;
        next = (latest) => ({
          ...withoutLease(latest),
          status: exhausted ? "Error" : (latest.requestedStatus ?? statusAfter),
          attempts,
          lastRunAt: finished.toISOString(),
          nextRunAt: new Date(finished.getTime() + claimed.rerunDelaySeconds * 1000).toISOString(),
          lastError: exhausted ? `Failed ${attempts} times; the last time: ${reason}` : reason,
        });
      }
    }
    return next;
  }

  /**
   * Full synchronization: the job entries are held (with this run as owner and an expiry, so a crash does
   * not hold them for good), every mapping runs in dependency order with uncoupled records, waiting for a
   * running job of the same mapping to finish first, then the entries are released.
   */
  /** One message of the work queue (checked first: a malformed one is refused, and goes to the poison queue). */
  async handleMessage(message: unknown): Promise<string> {
    const parsed = syncMessage.parse(typeof message === "string" ? JSON.parse(message) : message);
    if (parsed.kind === "full") {
      await this.runFull(parsed.company, parsed.runId);
      return `full synchronization of ${parsed.company} finished (run ${parsed.runId})`;
    }
    const outcome = await this.runJob(parsed.company, parsed.job, parsed.runId, parsed.now === true);
    return `${parsed.job} for ${parsed.company}: ${outcome} (run ${parsed.runId})`;
  }

  async runFull(company: string, runId: string): Promise<void> {
    const setup = await this.init.setups.get(company);
    if (!setup?.value.isEnabled) return;
    const ttlMs = leaseMsOf(this.init.config);
    const holdUntil = () => new Date(this.clock().getTime() + ttlMs).toISOString();
    await this.updateJobs(company, (job) => ({ ...job, heldByFullSync: runId, heldUntil: holdUntil() }));
    // The hold is renewed while the full synchronization lives: one that died frees the jobs within a lease period.
    let renewing: Promise<void> = Promise.resolve();
    const heartbeat = setInterval(
      () => {
        renewing = renewing
          .then(() => this.updateJobs(company, (job) => (job.heldByFullSync === runId ? { ...job, heldUntil: holdUntil() } : job)))
          .catch(() => undefined);
      },
      Math.max(1000, Math.floor(ttlMs / 3)),
    );
    heartbeat.unref();
    try {
      const order = [...defaultMappings].sort((a, b) => a.dependencyOrder - b.dependencyOrder).map((mapping) => mapping.name);
      const stored = new Set((await this.init.sync.mappings(company)).map(({ value }) => value.name));
      for (const name of order) {
        if (stored.has(name))
          await this.init.runner.runMapping(company, name, {
            runId,
            full: true,
            setup: setup.value,
            waitForLeaseMs: 15 * 60_000,
            ...(this.init.shutdown && { signal: this.init.shutdown }),
          });
      }
    } finally {
      clearInterval(heartbeat);
      await renewing;
      await this.updateJobs(company, (job) => (job.heldByFullSync === runId ? withoutHold(job) : job));
    }
  }

  async queueFull(company: string): Promise<string> {
    requireCompany(company);
    await this.requireEnabled(company);
    const runId = randomUUID();
    await this.init.queue.send({ kind: "full", company, runId });
    return runId;
  }

  /**
   * An ERP change to a table wakes the sleeping entries of its mappings (BC restarts an entry on hold with
   * inactivity timeout when a record of its table changes): they run at their next timer tick.
   */
  async wake(company: string, erpTable: string): Promise<void> {
    const mappings = new Set(defaultMappings.filter((mapping) => mapping.erpTable === erpTable).map((mapping) => mapping.name as string));
    for (const stored of await this.init.sync.jobs(company)) {
      if (!mappings.has(stored.value.id) || !stored.value.sleeping) continue;
      const { sleeping: _sleeping, idleSince: _idle, ...awake } = stored.value;
      try {
        await this.init.sync.saveJob({ ...awake, nextRunAt: this.clock().toISOString() }, stored.etag);
      } catch (error) {
        // Changed meanwhile (a run claimed it): that run or the next one sees the change anyway.
        if (!(error instanceof ConcurrencyError)) throw error;
      }
    }
  }

  /**
   * Progress of a running entry, written at most every second: a report within the second is written when
   * the second is over (the latest one), and `stop` ends it before the run's end clears the progress.
   */
  private progressReporter(company: string, jobId: string, runId: string): { report: (progress: RunProgress) => Promise<void>; stop: () => Promise<void> } {
    let lastWrite = 0;
    let latest: RunProgress | undefined;
    let timer: NodeJS.Timeout | undefined;
    let writing: Promise<void> = Promise.resolve();
    const write = () => {
      timer = undefined;
      if (!latest) return;
      const progress = latest;
      latest = undefined;
      lastWrite = Date.now();
      const json = JSON.stringify({ runId, ...progress, updatedAt: this.clock().toISOString() });
      // Progress is a courtesy: a failed write never fails the run.
      writing = writing.then(() => this.init.sync.saveProgress(company, jobId, json)).catch(() => undefined);
    };
    return {
      report: async (progress) => {
        latest = progress;
        const wait = lastWrite + 1000 - Date.now();
        if (wait <= 0) {
          write();
          await writing;
        } else timer ??= setTimeout(write, wait);
      },
      stop: async () => {
        clearTimeout(timer);
        latest = undefined;
        await writing;
      },
    };
  }

  /**
   * Keeps a claimed entry's lease while its run lives: renewed every third of the lease period, so the lease
   * is short (a run on an instance that died is taken over within that period) however long the run takes.
   * A renewal that meets a change (Hold, Ready, progress) reads the entry again; one that finds the lease taken
   * over stops.
   */
  private leaseHeartbeat(company: string, jobId: string): { stop: () => Promise<void> } {
    const ttlMs = leaseMsOf(this.init.config);
    let renewing: Promise<void> = Promise.resolve();
    const renew = async () => {
      const latest = await this.init.sync.job(company, jobId);
      if (!latest || latest.value.leaseOwner !== this.owner || latest.value.status !== "In Process") return clearInterval(timer);
      const leaseExpiresAt = new Date(this.clock().getTime() + ttlMs).toISOString();
      await this.init.sync.saveJob({ ...latest.value, leaseExpiresAt }, latest.etag).catch((error: unknown) => {
        // Changed meanwhile: the next beat reads it again.
        if (!(error instanceof ConcurrencyError)) throw error;
      });
    };
    const timer = setInterval(
      () => {
        renewing = renewing.then(renew).catch(() => undefined);
      },
      Math.max(1000, Math.floor(ttlMs / 3)),
    );
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await renewing;
      },
    };
  }

  /** Writes the new state over the claimed one; requests made meanwhile (Hold, Ready) are read again first. */
  private async finish(company: string, jobId: string, etag: string, claimed: JobEntry, next: (latest: JobEntry) => JobEntry): Promise<void> {
    let current = { value: claimed, etag };
    for (let attempt = 0; attempt < 5; attempt++) {
      if (current.value.leaseOwner !== this.owner) return; // the lease lapsed and another worker took over; its result stands
      try {
        await this.init.sync.saveJob(next(current.value), current.etag);
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        const latest = await this.init.sync.job(company, jobId);
        if (!latest) return;
        current = latest;
      }
    }
  }

  private async updateJobs(company: string, change: (job: JobEntry) => JobEntry): Promise<void> {
    for (const stored of await this.init.sync.jobs(company)) {
      let current: { value: JobEntry; etag: string } | undefined = stored;
      for (let attempt = 0; current && attempt < 5; attempt++) {
        try {
          const next = change(current.value);
          if (next === current.value) break;
          await this.init.sync.saveJob(next, current.etag);
          break;
        } catch (error) {
          if (!(error instanceof ConcurrencyError)) throw error;
          current = await this.init.sync.job(company, stored.value.id);
        }
      }
    }
  }

  /** A failed run is visible in the log (both directions of the mapping), not only on the job entry. */
  private async logFailure(company: string, jobId: string, runId: string, started: Date, reason: string): Promise<void> {
    if (!this.init.logs) return;
    const stored = await this.init.sync.mapping(company, jobId);
    const definition = stored ? (JSON.parse(stored.value.definitionJson) as MappingDefinition) : undefined;
    const directions: ("toCrm" | "fromCrm")[] = !definition || definition.direction === "both" ? ["toCrm", "fromCrm"] : [definition.direction];
    for (const direction of directions) {
      await this.init.logs.write(
        company,
        {
          id: SyncLogRepository.newLogId(started, runId, direction),
          runId,
          mapping: jobId,
          direction,
          startedAt: started.toISOString(),
          finishedAt: this.clock().toISOString(),
          ...emptyCounts(),
          message: `The run failed: ${reason}`,
        },
        [],
      );
    }
    if (stored) {
      try {
        await this.init.sync.saveMapping({ ...stored.value, lastSyncAt: this.clock().toISOString(), lastSyncResult: `Failed: ${reason}` }, stored.etag);
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
      }
    }
  }

  private async requireEnabled(company: string): Promise<void> {
    const setup = await requireSetup(this.init.setups, company);
    if (!setup.value.isEnabled) throw conflict(jobMessages.connectionDisabled(company));
  }

  private async requireJob(company: string, jobId: string) {
    requireCompany(company);
    const stored = await this.init.sync.job(company, jobId);
    if (!stored) throw notFound(`Company "${company}" has no job entry "${jobId}".`);
    return stored;
  }
}

function withoutLease(job: JobEntry): JobEntry {
  const { leaseOwner: _owner, leaseExpiresAt: _expires, requestedStatus: _requested, progressJson: _progress, ...rest } = job;
  return rest;
}

function withoutHold(job: JobEntry): JobEntry {
  const { heldByFullSync: _by, heldUntil: _until, ...rest } = job;
  return rest;
}
