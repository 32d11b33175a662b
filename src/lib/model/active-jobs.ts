export type JobStatus = "Ready" | "In Process" | "On Hold" | "Error" | "Finished";
/** A mapping's synchronization, customer statistics, order status reports, or creating submitted orders. */
export type JobKind = "mapping" | "statistics" | "orderStatus" | "autoCreateOrders";

/** What "X of Y" needs of a job entry. */
export interface JobSummary {
  kind: JobKind;
  status: JobStatus;
  /** A full synchronization holds the entry until then (it counts as On Hold meanwhile). */
  heldUntil?: string;
}

/**
 * The entries the ERP counts: the synchronization jobs, plus the jobs of the integration solution
 * (statistics, sales order status, auto-created orders) only when it is installed.
 */
export function countedStatuses(jobs: JobSummary[], integrationSolutionImported: boolean, now: Date = new Date()): JobStatus[] {
  return jobs
    .filter((job) => job.kind === "mapping" || integrationSolutionImported)
    .map((job) => (job.heldUntil !== undefined && Date.parse(job.heldUntil) > now.getTime() && job.status !== "In Process" ? "On Hold" : job.status));
}

export interface ActiveScheduledSyncJobs {
  ready: number;
  total: number;
  text: string;
  message: string;
}

export const activeJobMessages = {
  disabled: "The connection is not enabled, so no scheduled synchronization jobs run.",
  noJobs: "No scheduled synchronization jobs are set up. Use the default synchronization setup to create them.",
  noneStarted: "There is no job queue started. Scheduled synchronization jobs require an active job queue to process jobs. Set the jobs to Ready.",
  allReady: "All scheduled synchronization jobs are ready or already processing.",
  partlyReady: (ready: number, total: number) =>
    `An active job queue is available but only ${ready} of the ${total} scheduled synchronization jobs are ready or in process.`,
} as const;

/** The ERP's "Active scheduled synchronization jobs" field: X of Y, X = Ready or In Process. */
export function describeActiveJobs(statuses: JobStatus[], isEnabled: boolean): ActiveScheduledSyncJobs {
  if (!isEnabled) return { ready: 0, total: 0, text: "0 of 0", message: activeJobMessages.disabled };
  const total = statuses.length;
  const ready = statuses.filter((status) => status === "Ready" || status === "In Process").length;
  const message =
    total === 0
      ? activeJobMessages.noJobs
      : ready === 0
        ? activeJobMessages.noneStarted
        : ready === total
          ? activeJobMessages.allReady
          : activeJobMessages.partlyReady(ready, total);
  return { ready, total, text: `${ready} of ${total}`, message };
}
