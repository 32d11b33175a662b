// Record pairs: one per record a run works on, from the feeds or from the records a user named.
import type { Coupling } from "../../model/coupling";
import { type SyncIssue, retriedKinds } from "../../model/sync-issue";
import { type CrmRow, crmRowUnchanged } from "../reconcile";
import { type Pair, type RecordSelection, type RunContext, type RunDeps, issueOf } from "./run-context";
import type { ChangeFeeds } from "./change-feeds";
import { crmRowsByIds } from "./complete-pairs";
import { ownerOf } from "../../model/company-scope";
import { reclaimCoupledRows } from "./company-claims";

/** Pairs for named records: ERP records by id, CRM rows by id (within the mapping's CRM filter). */
export async function pairsOfSelection(deps: RunDeps, context: RunContext, selection: RecordSelection): Promise<Pair[]> {
  const pairs = new Map<string, Pair>();
  for (const erpId of selection.erpIds ?? []) {
    const coupling = context.byErp.get(erpId);
    pairs.set(`e:${erpId}`, { key: `e:${erpId}`, source: "erp", ...(coupling && { coupling }) });
  }
  const crmIds = (selection.crmIds ?? []).map((id) => id.toLowerCase());
  // A coupled row is read as it is; an uncoupled one only if it is within the mapping's CRM filter.
  const coupledIds = crmIds.filter((id) => context.byCrm.has(id));
  const uncoupledIds = crmIds.filter((id) => !context.byCrm.has(id));
  const rows = new Map<string, CrmRow>([
    ...(coupledIds.length > 0 ? await crmRowsByIds(context, coupledIds, false) : []),
    ...(uncoupledIds.length > 0 ? await crmRowsByIds(context, uncoupledIds, true) : []),
  ]);
  for (const crmId of crmIds) {
    const coupling = context.byCrm.get(crmId);
    const key = coupling ? `e:${coupling.erpId}` : `c:${crmId}`;
    const row = rows.get(crmId);
    if (!coupling && !row) continue; // not there, or outside the mapping's filter
    const pair = pairs.get(key) ?? { key, source: "crm" as const, ...(coupling && { coupling }) };
    pair.crm = row ?? "deleted";
    pairs.set(key, pair);
  }
  const issues = new Map((await deps.init.issues.list(context.company, context.name)).map((issue) => [`${issue.side}:${issue.sourceId}`, issue]));
  for (const pair of pairs.values()) pair.issue ??= issueOf(pair, issues);
  return [...pairs.values()];
}

/** CRM rows of coupled records that are gone: from the delta link, or (the first time) absent from the full list. */
export function crmDeletions(context: RunContext, tracked: ChangeFeeds["delta"]): Set<string> {
  const deleted = new Set<string>();
  if (!tracked) return deleted;
  if (tracked.initial) {
    const present = new Set(tracked.present);
    for (const crmId of context.byCrm.keys()) if (!present.has(crmId)) deleted.add(crmId);
  } else for (const crmId of tracked.deleted) if (context.byCrm.has(crmId)) deleted.add(crmId);
  return deleted;
}

/**
 * The record pairs a run has beside the ERP feed, by key: the retry list first, then CRM deletions, then CRM rows in
 * modifiedon order. A record the ERP feed also brings is taken into that pair as the feed goes by.
 */
export async function pairsBesideErpFeed(
  context: RunContext,
  feeds: ChangeFeeds,
  deletedCrm: Set<string>,
  heldBack: Map<string, SyncIssue>,
): Promise<Map<string, Pair>> {
  const { definition } = context;
  const pairs = new Map<string, Pair>();
  const pairFor = (coupling: Coupling | undefined, erpId: string | undefined, crmId: string | undefined, source: Pair["source"]): Pair => {
    const key = coupling ? `e:${coupling.erpId}` : erpId !== undefined ? `e:${erpId}` : `c:${crmId}`;
    let pair = pairs.get(key);
    if (!pair) {
      pair = { key, source, ...(coupling && { coupling }) };
      pairs.set(key, pair);
    }
    return pair;
  };
  for (const issue of feeds.issues) {
    if (!retriedKinds.includes(issue.kind)) continue;
    const coupling = issue.side === "erp" ? context.byErp.get(issue.sourceId) : context.byCrm.get(issue.sourceId);
    const pair = pairFor(
      coupling,
      issue.side === "erp" ? issue.sourceId : coupling?.erpId,
      issue.side === "crm" ? issue.sourceId : undefined,
      issue.direction === "toCrm" ? "erp" : "crm",
    );
    pair.issue = issue;
  }
  for (const crmId of deletedCrm) pairFor(context.byCrm.get(crmId), undefined, crmId, "crm").crm = "deleted";
  await reclaimCoupledRows(context, feeds.crmRows);
  const integrationUserId = (context.setup.connectionUserId ?? (await context.client.whoAmI()).UserId).toLowerCase();
  for (const row of feeds.crmRows) {
    const crmId = String(row[definition.crmKey]).toLowerCase();
    if (deletedCrm.has(crmId)) continue;
    const coupling = context.byCrm.get(crmId);
    // An uncoupled row the integration user wrote last belongs to another ERP company synchronized with this
    // organization (or to a run that crashed before its coupling, which a pending coupling covers): not ours.
    if (!coupling && String(row._modifiedby_value ?? "").toLowerCase() === integrationUserId) continue;
    // An uncoupled row another company took is its own (the feed's filter keeps them out; a row taken since, too).
    const owner = ownerOf(context.setup, definition.crmEntitySet, row);
    if (!coupling && owner === "other") continue;
    // A row the integration created carries its company from the start: one without it had it cleared by a user,
    // and belongs to the company that made it (whose run gives it back its company), not to the first to import it.
    if (!coupling && owner === "unclaimed" && String(row._createdby_value ?? "").toLowerCase() === integrationUserId) continue;
    // A coupled row with nothing new (the last run's own write, read back) needs no ERP read, unless the pair is here anyway.
    if (
      coupling &&
      !pairs.has(`e:${coupling.erpId}`) &&
      !heldBack.has(`erp:${coupling.erpId}`) &&
      !heldBack.has(`crm:${crmId}`) &&
      crmRowUnchanged(definition, coupling, row, context.lookups)
    )
      continue;
    const pair = pairFor(coupling, coupling?.erpId, crmId, "crm");
    if (pair.crm !== "deleted") pair.crm = row;
  }
  // Skipped records and open conflicts seen in the feeds keep their row (a skipped one is not even tried).
  for (const pair of pairs.values()) pair.issue ??= issueOf(pair, heldBack);
  return pairs;
}

/** Skipped records and open conflicts, by `side:id`: not retried, but a record seen in the feeds keeps its row. */
export function heldBackIssues(issues: SyncIssue[]): Map<string, SyncIssue> {
  return new Map(issues.filter((issue) => !retriedKinds.includes(issue.kind)).map((issue) => [`${issue.side}:${issue.sourceId}`, issue]));
}
