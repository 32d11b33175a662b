// What a run leaves behind to read: its log rows and error rows, and one structured line for Application Insights.
import type { SyncCounts } from "../../model/sync-plan";
import { type SyncLogEntry, SyncLogRepository } from "../../storage/sync-log-repository";
import type { MappingRunResult, RunContext, RunDeps, SyncRunRecord } from "./run-context";

export async function writeLogs(deps: RunDeps, context: RunContext, started: Date, stoppedEarly: boolean): Promise<SyncLogEntry[]> {
  const logs: SyncLogEntry[] = [];
  const directions: ("toCrm" | "fromCrm")[] = context.definition.direction === "both" ? ["toCrm", "fromCrm"] : [context.definition.direction];
  for (const direction of directions) {
    const counts = context.counts[direction];
    const finished = deps.clock();
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
    await deps.init.logs.write(context.company, log, context.errors[direction]);
    logs.push(log);
  }
  return logs;
}

export function describeCounts(counts: SyncCounts): string {
  return (
    `${counts.inserted} inserted, ${counts.modified} modified, ${counts.deleted} deleted, ${counts.unchanged} unchanged, ${counts.skipped} ` +
    `skipped, ${counts.failed} failed`
  );
}

/** The one structured line per run (`sync-run {json}`), which the Functions host sends to Application Insights. */
export function logRunRecord(
  deps: RunDeps,
  context: RunContext,
  result: MappingRunResult,
  measured: { full: boolean; startedAt: number; requestsBefore: number; throttledBefore: number },
): void {
  const counts = (direction: "toCrm" | "fromCrm") => {
    const log = result.logs.find((entry) => entry.direction === direction);
    return log && { inserted: log.inserted, modified: log.modified, deleted: log.deleted, unchanged: log.unchanged, skipped: log.skipped, failed: log.failed };
  };
  const record: SyncRunRecord = {
    event: "sync-run",
    company: context.company,
    mapping: context.name,
    runId: context.runId,
    full: measured.full,
    durationMs: Date.now() - measured.startedAt,
    stoppedEarly: result.stoppedEarly,
    dataverseRequests: context.client.stats.requests - measured.requestsBefore,
    throttled: context.client.stats.throttled - measured.throttledBefore,
    counts: { toCrm: counts("toCrm"), fromCrm: counts("fromCrm") },
  };
  (deps.init.log ?? ((line: string) => console.info(line)))(`sync-run ${JSON.stringify(record)}`);
}

/** The mapping's "last sync" text: the counts of each direction. */
export function summaryOf(logs: SyncLogEntry[]): string {
  return logs.map((log) => `${log.direction === "toCrm" ? "to CRM" : "from CRM"}: ${describeCounts(log)}`).join("; ");
}
