// Writes to Dataverse in bulk (UpsertMultiple, UpdateMultiple), and finds the failing rows of a refused chunk.
import { syncMessages } from "../../model/sync-plan";
import { DataverseRequestError } from "../../dataverse/dataverse-errors";
import { mapLimit } from "../../map-limit";
import type { PairPlan } from "../reconcile";
import type { RunContext, RunDeps } from "./run-context";

/**
 * Creates as UpsertMultiple with the ids chosen up front, updates as UpdateMultiple (only the changed
 * columns); chunks run in parallel. A chunk Dataverse refuses is retried row by row to find the failing
 * rows; throttling and outages propagate (the run fails and is retried later).
 */
export async function writeCrm<T extends { plan: Extract<PairPlan, { action: "write" }> }>(
  deps: RunDeps,
  context: RunContext,
  writes: T[],
): Promise<Map<T, string>> {
  const { definition, client } = context;
  const size = deps.init.config.SYNC_BATCH_SIZE;
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

/** Errors that belong to rows (bad data, a deleted row) rather than to the service. */
function isRowError(error: unknown): boolean {
  return (
    error instanceof DataverseRequestError && error.status >= 400 && error.status < 500 && error.status !== 401 && error.status !== 403 && error.status !== 429
  );
}
