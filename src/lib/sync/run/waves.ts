// Plans and writes the pairs wave by wave, moving the ERP watermark past each fully done prefix of the feed.
import { stoppedBy } from "../../cancellation";
import { planPair } from "./plan-pair";
import type { Lease } from "./mapping-lease";
import type { MappingRunOptions, Outcome, Pair, RunContext, RunDeps } from "./run-context";
import { minStamp } from "./change-feeds";
import { applyOutcomes } from "./apply-outcomes";
import { resolveLookupTargets } from "./lookups";

/**
 * Two waves overlap: while one writes its couplings and retry list to table storage, the next one's Dataverse
 * requests are already queued behind the client's concurrency limit, so Dataverse never waits for storage.
 * Pairs are independent (a record is in one pair of a run), so waves may finish in any order.
 */
export const wavesInFlight = 2;

export async function processWaves(
  deps: RunDeps,
  context: RunContext,
  pairs: Pair[],
  lease: Lease,
  options: MappingRunOptions,
): Promise<{ stoppedEarly: boolean }> {
  const waveSize = deps.init.config.SYNC_BATCH_SIZE * Math.max(1, deps.init.config.SYNC_MAX_PARALLEL);
  // The ERP watermark may move only past a prefix of the feed (in stamp order) that is entirely done:
  // retried records come first, and waves finish in any order.
  const stamped = pairs.filter((pair) => pair.erpStamp !== undefined).sort((a, b) => (a.erpStamp! < b.erpStamp! ? -1 : a.erpStamp! > b.erpStamp! ? 1 : 0));
  const done = new Set<Pair>();
  let prefix = 0;
  // Lookup targets are synchronized by one wave at a time (they hold another mapping's lease), and the lease
  // is saved by one wave at a time (its ETag changes with each save).
  const oneAtATime = serialized();

  const runWave = async (wave: Pair[]) => {
    const planned: Outcome[] = wave.map((pair) => ({ pair, plan: planPair(context, pair) }));
    const outcomes = await oneAtATime(() => resolveLookupTargets(deps, context, planned));
    await applyOutcomes(deps, context, outcomes);
    for (const pair of wave) {
      done.add(pair);
      // What the wave read of each side is written and no longer needed: a large run holds only its pairs' keys.
      delete pair.erp;
      delete pair.crm;
    }
    await oneAtATime(async () => {
      await options.onProgress?.({ phase: "synchronizing", recordsDone: done.size, recordsTotal: pairs.length });
      const before = prefix;
      while (prefix < stamped.length && done.has(stamped[prefix]!)) prefix++;
      if (!context.full && !context.targeted && prefix > before && done.size < pairs.length)
        await lease.save({ erpWatermark: minStamp(stamped[prefix - 1]!.erpStamp!, context.erpSafePoint) });
      else await lease.renew();
    });
  };

  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let stoppedEarly = false;
  for (let start = 0; start < pairs.length; start += waveSize) {
    if (running.size >= wavesInFlight) await Promise.race(running);
    if (failure) break;
    if (options.signal?.aborted) {
      failure = { error: stoppedBy(options.signal) };
      break;
    }
    if (options.budget?.aborted) {
      stoppedEarly = true;
      break;
    }
    const wave = runWave(pairs.slice(start, start + waveSize))
      .catch((error: unknown) => void (failure ??= { error }))
      .finally(() => running.delete(wave));
    running.add(wave);
  }
  // A failed or stopped run still lets the wave in flight finish its writes (and record them) before it ends.
  await Promise.all(running);
  if (failure) throw failure.error;
  return { stoppedEarly };
}

/** Runs the given steps one after another, in the order they were asked for. */
function serialized(): <T>(step: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(step: () => Promise<T>) => {
    const result = last.then(step);
    last = result.catch(() => undefined);
    return result;
  };
}
