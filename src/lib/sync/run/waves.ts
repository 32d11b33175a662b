// Plans and writes a run's waves as they come, moving the ERP watermark past each fully done stretch of the feed.
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

/** Pairs written together, and the stamp of the last ERP change they cover (passed-over changes included). */
export interface Wave {
  pairs: Pair[];
  feedStamp?: string;
}

/**
 * Where a run's waves come from, prepared one ahead while others are written. `drain` waits for every wave
 * under way: a source that meets a record an earlier wave is writing waits for it before reading its coupling.
 */
export type WaveSource = (drain: () => Promise<void>) => AsyncGenerator<Wave>;

/** How many pairs a wave holds: one bulk request per request Dataverse takes at once (its x-ms-dop-hint, capped). */
export function waveSizeOf(deps: RunDeps, context: Pick<RunContext, "client">): number {
  return deps.init.config.SYNC_BATCH_SIZE * Math.max(1, Math.min(deps.init.config.SYNC_MAX_PARALLEL, context.client.parallelism));
}

/** Named records, already paired: waves in order. */
export function wavesOf(pairs: Pair[], size: number): WaveSource {
  return async function* () {
    for (let start = 0; start < pairs.length; start += size) yield { pairs: pairs.slice(start, start + size) };
  };
}

export async function processWaves(
  deps: RunDeps,
  context: RunContext,
  source: WaveSource,
  lease: Lease,
  options: MappingRunOptions,
): Promise<{ stoppedEarly: boolean; recordsDone: number }> {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  // A source waiting for the waves under way stops if one failed: what it would read next may be half written.
  const waves = source(async () => {
    await Promise.all(running);
    if (failure) throw failure.error;
  });
  // Waves in feed order whose stretch of the feed the watermark has not passed yet: it moves past done ones only.
  const unpassed: { wave: Wave; done: boolean }[] = [];
  let recordsDone = 0;
  let recordsStarted = 0;
  let sourceDone = false;
  // Lookup targets are synchronized by one wave at a time (they hold another mapping's lease), and the lease
  // is saved by one wave at a time (its ETag changes with each save).
  const oneAtATime = serialized();

  const runWave = async (entry: { wave: Wave; done: boolean }) => {
    const { pairs } = entry.wave;
    if (pairs.length > 0) {
      const planned: Outcome[] = pairs.map((pair) => ({ pair, plan: planPair(context, pair) }));
      const outcomes = await oneAtATime(() => resolveLookupTargets(deps, context, planned));
      await applyOutcomes(deps, context, outcomes);
      for (const pair of pairs) {
        // What the wave read of each side is written and no longer needed: a large run holds only its waves.
        delete pair.erp;
        delete pair.crm;
      }
    }
    entry.done = true;
    recordsDone += pairs.length;
    await oneAtATime(async () => {
      await options.onProgress?.({ phase: "synchronizing", recordsDone, ...(sourceDone && { recordsTotal: recordsStarted }) });
      let passed: string | undefined;
      while (unpassed[0]?.done) passed = unpassed.shift()!.wave.feedStamp ?? passed;
      if (!context.full && !context.targeted && passed !== undefined) await lease.save({ erpWatermark: minStamp(passed, context.erpSafePoint) });
      else await lease.renew();
    });
  };

  let stoppedEarly = false;
  let upcoming = prepared(waves);
  // Whether a new wave may start: not after a failure, a stop or the end of the time budget.
  const mayStart = (): boolean => {
    if (failure) return false;
    if (options.signal?.aborted) {
      failure = { error: stoppedBy(options.signal) };
      return false;
    }
    if (options.budget?.aborted) stoppedEarly = true;
    return !stoppedEarly;
  };
  for (;;) {
    if (running.size >= wavesInFlight) await Promise.race(running);
    if (!mayStart()) break;
    let next: IteratorResult<Wave>;
    try {
      next = await upcoming;
    } catch (error) {
      failure ??= { error };
      break;
    }
    // Preparing the wave took time: asked again, as a wave that failed meanwhile may have left its records half done.
    if (!mayStart()) break;
    if (next.done) {
      sourceDone = true;
      break;
    }
    upcoming = prepared(waves);
    const entry = { wave: next.value, done: false };
    unpassed.push(entry);
    recordsStarted += entry.wave.pairs.length;
    const wave = runWave(entry)
      .catch((error: unknown) => void (failure ??= { error }))
      .finally(() => running.delete(wave));
    running.add(wave);
  }
  // A failed or stopped run still lets the waves under way finish their writes (and record them) before it ends.
  await Promise.all(running);
  if (!sourceDone) {
    await upcoming.catch(() => undefined);
    await waves.return(undefined);
  }
  if (failure) throw failure.error;
  return { stoppedEarly, recordsDone };
}

/** The source's next wave, being prepared; marked handled, as a run that stops first never awaits it. */
function prepared(waves: AsyncGenerator<Wave>): Promise<IteratorResult<Wave>> {
  const next = waves.next();
  next.catch(() => undefined);
  return next;
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
