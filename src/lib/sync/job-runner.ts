import { randomUUID } from "node:crypto";
import type { Config } from "../config";
import { DataverseRequestError, describeFailure, failureStep } from "../dataverse/dataverse-errors";
import { notFound } from "../http/problem";
import { requireCompany } from "../setup/setup-service";
import { ConcurrencyError, type SetupRepository } from "../storage/setup-repository";
import type { SyncRepository } from "../storage/sync-repository";
import type { WorkQueue } from "../storage/work-queue";
import { defaultMappings } from "./default-mappings";
import type { JobEntry } from "./job-entry";
import { type SyncRunner, describeCounts } from "./sync-runner";

export type JobRunOutcome = "processed" | "yielded" | "skipped";

/**
 * Job-queue entries at run time: timers find the due entries and fan them out through the queue; a worker
 * claims an entry with an ETag-conditional lease (Ready -> In Process), runs it, and sets the next run,
 * counting failed attempts up to Error.
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
      config: Pick<Config, "SYNC_TIME_BUDGET_SECONDS">;
      clock?: () => Date;
    },
  ) {
    this.clock = init.clock ?? (() => new Date());
  }

  /** Timer: queue a run for every company whose entry is due (Ready and past its next run, or a lapsed lease). */
  async dispatchDue(jobId: string): Promise<number> {
    const due = await this.init.sync.dueJobs(jobId, this.clock().toISOString());
    await Promise.all(due.map((company) => this.init.queue.send({ kind: "job", company, job: jobId, runId: randomUUID() })));
    return due.length;
  }

  /** "Run now": queued at once, whatever the schedule says. Answers the run id to find its log rows. */
  async runNow(company: string, jobId: string): Promise<string> {
    await this.requireJob(company, jobId);
    const runId = randomUUID();
    await this.init.queue.send({ kind: "job", company, job: jobId, runId });
    return runId;
  }

  async setStatus(company: string, jobId: string, status: "On Hold" | "Ready"): Promise<JobEntry> {
    const stored = await this.requireJob(company, jobId);
    const job: JobEntry = { ...stored.value, status, ...(status === "Ready" && { attempts: 0, nextRunAt: this.clock().toISOString() }) };
    delete job.leaseOwner;
    delete job.leaseExpiresAt;
    await this.init.sync.saveJob(job, stored.etag);
    return job;
  }

  /** Worker: claim, run, reschedule. Two workers on one entry: one processes, the other yields. */
  async runJob(company: string, jobId: string, runId: string = randomUUID(), force = false): Promise<JobRunOutcome> {
    const stored = await this.init.sync.job(company, jobId);
    const setup = await this.init.setups.get(company);
    if (!stored || !setup?.value.isEnabled) return "skipped";
    const now = this.clock();
    const lapsed = stored.value.status === "In Process" && (!stored.value.leaseExpiresAt || Date.parse(stored.value.leaseExpiresAt) < now.getTime());
    const runnable = stored.value.status === "Ready" || lapsed || (force && stored.value.status !== "In Process");
    if (!runnable) return "yielded";
    const budgetMs = this.init.config.SYNC_TIME_BUDGET_SECONDS * 1000;
    const claimed: JobEntry = {
      ...stored.value,
      status: "In Process",
      leaseOwner: this.owner,
      leaseExpiresAt: new Date(now.getTime() + budgetMs + 60_000).toISOString(),
    };
    let etag: string;
    try {
      etag = await this.init.sync.saveJob(claimed, stored.etag);
    } catch (error) {
      if (error instanceof ConcurrencyError) return "yielded";
      throw error;
    }

    const { leaseOwner: _owner, leaseExpiresAt: _expires, ...released } = claimed;
    let next: JobEntry;
    try {
      let result: string;
      let stoppedEarly = false;
      if (claimed.kind === "statistics") {
        result = "Customer statistics are not synchronized by this service; nothing to do.";
      } else {
        const run = await this.init.runner.runMapping(company, jobId, { runId, deadline: now.getTime() + budgetMs, setup: setup.value });
        stoppedEarly = run.stoppedEarly;
        result = run.logs.map((log) => `${log.direction === "toCrm" ? "to CRM" : "from CRM"}: ${describeCounts(log)}`).join("; ");
      }
      const finished = this.clock();
      next = {
        ...released,
        status: "Ready",
        attempts: 0,
        lastRunAt: finished.toISOString(),
        nextRunAt: new Date(finished.getTime() + (stoppedEarly ? 0 : claimed.minutesBetweenRuns * 60_000)).toISOString(),
        lastResult: result,
      };
      delete next.lastError;
    } catch (error) {
      const finished = this.clock();
      const reason = describeFailure(error);
      if (failureStep(error) === "throttled") {
        // Throttling is Dataverse asking to wait, not a failure: no attempt is counted.
        const wait = error instanceof DataverseRequestError && error.retryAfterMs ? error.retryAfterMs : claimed.rerunDelaySeconds * 1000;
        next = { ...released, status: "Ready", lastRunAt: finished.toISOString(), nextRunAt: new Date(finished.getTime() + wait).toISOString(), lastError: reason };
      } else {
        const attempts = claimed.attempts + 1;
        const exhausted = attempts >= claimed.maxAttempts;
        next = {
          ...released,
          status: exhausted ? "Error" : "Ready",
          attempts,
          lastRunAt: finished.toISOString(),
          nextRunAt: new Date(finished.getTime() + claimed.rerunDelaySeconds * 1000).toISOString(),
          lastError: exhausted ? `Failed ${attempts} times; the last time: ${reason}` : reason,
        };
      }
    }
    try {
      await this.init.sync.saveJob(next, etag);
    } catch (error) {
      // The lease lapsed and another worker took the entry over; its result stands.
      if (!(error instanceof ConcurrencyError)) throw error;
    }
    return "processed";
  }

  /** Full synchronization: jobs On Hold, every mapping in dependency order with uncoupled records, jobs back. */
  async runFull(company: string, runId: string): Promise<void> {
    const setup = await this.init.setups.get(company);
    if (!setup?.value.isEnabled) return;
    const before = new Map((await this.init.sync.jobs(company)).map(({ value }) => [value.id, value.status]));
    await this.init.sync.setStatuses(company, () => "On Hold");
    try {
      const order = [...defaultMappings].sort((a, b) => a.dependencyOrder - b.dependencyOrder).map((mapping) => mapping.name);
      const stored = new Set((await this.init.sync.mappings(company)).map(({ value }) => value.name));
      for (const name of order) {
        if (stored.has(name)) await this.init.runner.runMapping(company, name, { runId, full: true, setup: setup.value });
      }
    } finally {
      await this.init.sync.setStatuses(company, (job) => before.get(job.id));
    }
  }

  async queueFull(company: string): Promise<string> {
    requireCompany(company);
    if (!(await this.init.setups.get(company))) throw notFound(`No connection is set up for company "${company}".`);
    const runId = randomUUID();
    await this.init.queue.send({ kind: "full", company, runId });
    return runId;
  }

  private async requireJob(company: string, jobId: string) {
    requireCompany(company);
    const stored = await this.init.sync.job(company, jobId);
    if (!stored) throw notFound(`Company "${company}" has no job entry "${jobId}".`);
    return stored;
  }
}
