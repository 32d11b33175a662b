// A run's waves: the ERP feed cut into waves as it is read, then the pairs beside it (retry list, CRM changes).
import { type SyncIssue, retriedKinds } from "../../model/sync-issue";
import type { ErpChange, VersionedErpRecord } from "../../storage/erp-record-repository";
import { laterCommit } from "../../storage/erp-record-rows";
import { completePairs } from "./complete-pairs";
import type { ErpFeed } from "./erp-feed";
import { SeenIds } from "./seen-ids";
import { type Pair, type RunContext, type RunDeps, issueOf } from "./run-context";
import type { Wave, WaveSource } from "./waves";

/**
 * Waves of the ERP feed in stamp order, each completed (complete-pairs.ts) as it is cut, then the pairs beside the
 * feed. A record the feed brings that also has a CRM change, a deletion or a retry entry is taken into one pair,
 * so a record is written once. A run holds the waves under way, the pairs beside the feed and the ids the feed
 * brought (as hashes, to know a record an earlier wave wrote), never the feed.
 */
export function wavesOfChanges(
  deps: RunDeps,
  context: RunContext,
  feed: ErpFeed,
  beside: Map<string, Pair>,
  heldBack: Map<string, SyncIssue>,
  waveSize: number,
): WaveSource {
  return async function* (drain) {
    try {
      const taken = new SeenIds();
      let wave = new Map<string, Pair>();
      let feedStamp: string | undefined;
      let yieldedStamp: string | undefined;
      // The commit time of the change each pair of the wave being cut holds: of two racing writes, the last commit wins.
      let committed = new Map<string, ErpChange>();
      const superseded: VersionedErpRecord[] = [];
      const cut = async (): Promise<Wave> => {
        const pairs = [...wave.values()];
        wave = new Map();
        committed = new Map();
        // Housekeeping: a change row that another change of the same record replaced is never needed again.
        await deps.init.erpRecords.forgetChanges(context.company, context.definition.erpTable, superseded.splice(0));
        // The retry-list row an earlier wave of this run wrote, or the one the run began with.
        for (const pair of pairs) pair.issue ??= issueOf(pair, context.issuesWritten) ?? issueOf(pair, heldBack);
        // A run that holds only the couplings it needs reads the wave's by key, in a few queries.
        if (context.partialCouplings) {
          const missing = pairs.filter((pair) => !pair.coupling && pair.key.startsWith("e:") && !context.byErp.has(pair.key.slice(2)));
          if (missing.length > 0) {
            const found = await deps.init.couplings.byErpIds(
              context.company,
              context.name,
              missing.map((pair) => pair.key.slice(2)),
            );
            for (const pair of missing) {
              const coupling = found.get(pair.key.slice(2));
              if (coupling) pair.coupling = coupling;
            }
          }
        }
        await completePairs(deps, context, pairs);
        yieldedStamp = feedStamp;
        return { pairs, ...(feedStamp !== undefined && { feedStamp }) };
      };
      for (let next = await feed.next(); next; next = await feed.next()) {
        const change = next.record;
        const key = `e:${change.id}`;
        let pair = wave.get(key);
        // A pair beside the feed was never taken (taking it removes it), whatever `taken` says of a shared hash.
        if (!pair && taken.has(change.id) && !beside.has(key)) {
          // A later change of a record an earlier wave wrote (its older change row was not forgotten yet).
          await drain();
          pair = await laterChange(deps, context, change);
        } else if (!pair) {
          pair = beside.get(key) ?? { key, source: "erp", ...(context.byErp.has(change.id) && { coupling: context.byErp.get(change.id)! }) };
          beside.delete(key);
          // A CRM change of the record rides with its ERP change, as it would have if both were read at once.
          if (!(pair.issue && retriedKinds.includes(pair.issue.kind)) && pair.crm !== "deleted") pair.source = "erp";
          // The CRM rows were read when the run began: a record changed in the ERP since may have been edited in CRM
          // since too, so its row is read again rather than taken as unchanged.
          if (change.modifiedAt > context.erpSafePoint! && pair.crm === undefined) pair.freshCrm = true;
        }
        feedStamp = change.modifiedAt;
        if (!pair) continue;
        taken.add(change.id);
        const held = committed.get(key);
        if (!held && pair.erp !== undefined && pair.erpStamp !== change.modifiedAt) {
          // The pair holds the record as its row was read (laterChange): read again, it holds this change too.
          const record = await deps.init.erpRecords.get(context.company, context.definition.erpTable, change.id);
          if (record) {
            pair.erp = record;
            pair.erpStamp = record.modifiedAt;
          }
          if (record && record.modifiedAt !== change.modifiedAt) superseded.push(change);
        } else if (pair.erp === undefined || (held && laterCommit(next, held))) {
          if (held) superseded.push(held.record);
          pair.erp = change;
          pair.erpStamp = change.modifiedAt;
          committed.set(key, next);
        } else if (held) superseded.push(change);
        wave.set(key, pair);
        // Waves end where the stamp changes: the watermark may stop after a wave, and never inside one stamp.
        if (wave.size >= waveSize && (await feed.peek())?.record.modifiedAt !== feedStamp) yield await cut();
      }
      // The last part of the feed and the pairs beside it share waves (a small run is one wave, as it always was).
      const tail = wave;
      const tailWave = tail.size > 0 || feedStamp !== yieldedStamp ? await cut() : { pairs: [] };
      let rest = [...beside.values()];
      beside.clear();
      // A new CRM row may be matched to a record the feed brought only if no wave coupled it.
      const coupledByRun = async (erpId: string): Promise<boolean> => {
        if (!taken.has(erpId)) return false;
        const pair = tail.get(`e:${erpId}`);
        if (pair) return pair.coupling !== undefined;
        await drain();
        return (await deps.init.couplings.get(context.company, context.name, erpId)) !== undefined;
      };
      await completePairs(deps, context, rest, false, coupledByRun);
      // A row matched to an uncoupled record of the tail joins that record's pair: one pair, one coupling.
      rest = rest.filter((pair) => {
        const joined = pair.key.startsWith("c:") && pair.coupling ? tail.get(`e:${pair.coupling.erpId}`) : undefined;
        if (!joined || joined.coupling) return true;
        joined.coupling = pair.coupling;
        joined.crm = pair.crm;
        joined.issue ??= pair.issue;
        return false;
      });
      const all = [...tailWave.pairs, ...rest];
      if (all.length === 0 && tailWave.feedStamp !== undefined) yield tailWave;
      for (let start = 0; start < all.length; start += waveSize) {
        const pairs = all.slice(start, start + waveSize);
        yield { pairs, ...(start === 0 && tailWave.feedStamp !== undefined && { feedStamp: tailWave.feedStamp }) };
      }
    } finally {
      await feed.close();
    }
  };
}

/**
 * The pair of a record's later change, with the record as its row holds it (the last commit) and its coupling as
 * the earlier wave left it, its CRM row to be read fresh; undefined when the coupling holds that state already.
 * A change row older than the record's state is forgotten.
 */
async function laterChange(deps: RunDeps, context: RunContext, change: VersionedErpRecord): Promise<Pair | undefined> {
  const { company, name, definition } = context;
  const [coupling, record] = await Promise.all([
    deps.init.couplings.get(company, name, change.id),
    deps.init.erpRecords.get(company, definition.erpTable, change.id),
  ]);
  const current = record ?? change;
  if (change.modifiedAt !== current.modifiedAt) await deps.init.erpRecords.forgetChanges(company, definition.erpTable, [change]);
  if (coupling?.erpModifiedAt !== undefined && coupling.erpModifiedAt >= current.modifiedAt) return undefined;
  return { key: `e:${change.id}`, source: "erp", erp: current, erpStamp: current.modifiedAt, ...(coupling && { coupling, freshCrm: true }) };
}
