// Plans and writes the pairs wave by wave, moving the ERP watermark past each fully done prefix of the feed.
import { stoppedBy } from "../../cancellation";
import { planPair } from "./plan-pair";
import type { Lease } from "./mapping-lease";
import type { MappingRunOptions, Pair, RunContext, RunDeps } from "./run-context";
import { minStamp } from "./change-feeds";
import { applyOutcomes } from "./apply-outcomes";
import { resolveLookupTargets } from "./lookups";

export async function processWaves(
  deps: RunDeps,
  context: RunContext,
  pairs: Pair[],
  lease: Lease,
  options: MappingRunOptions,
): Promise<{ stoppedEarly: boolean }> {
  const waveSize = deps.init.config.SYNC_BATCH_SIZE * Math.max(1, deps.init.config.SYNC_MAX_PARALLEL);
  // The ERP watermark may move only past a prefix of the feed (in stamp order) that is entirely done:
  // retried records come first, so the waves are not in stamp order.
  const stamped = pairs.filter((pair) => pair.erpStamp !== undefined).sort((a, b) => (a.erpStamp! < b.erpStamp! ? -1 : a.erpStamp! > b.erpStamp! ? 1 : 0));
  const done = new Set<Pair>();
  let prefix = 0;
  for (let start = 0; start < pairs.length; start += waveSize) {
    if (options.signal?.aborted) throw stoppedBy(options.signal);
    if (options.budget?.aborted) return { stoppedEarly: true };
    const wave = pairs.slice(start, start + waveSize);
    let outcomes = wave.map((pair) => ({ pair, plan: planPair(context, pair) }));
    outcomes = await resolveLookupTargets(deps, context, outcomes);
    await applyOutcomes(deps, context, outcomes);
    for (const pair of wave) {
      done.add(pair);
      // What the wave read of each side is written and no longer needed: a large run holds only its pairs' keys.
      delete pair.erp;
      delete pair.crm;
    }
    await options.onProgress?.({ phase: "synchronizing", recordsDone: Math.min(start + waveSize, pairs.length), recordsTotal: pairs.length });
    const before = prefix;
    while (prefix < stamped.length && done.has(stamped[prefix]!)) prefix++;
    if (!context.full && !context.targeted && prefix > before && start + waveSize < pairs.length)
      await lease.save({ erpWatermark: minStamp(stamped[prefix - 1]!.erpStamp!, context.erpSafePoint) });
    else await lease.renew();
  }
  return { stoppedEarly: false };
}
