// The change feeds a run reads, and where its watermarks move once it is done.
import { DataverseRequestError } from "../../dataverse/dataverse-errors";
import type { LagSeen } from "../../storage/lag-seen";
import { type SyncIssue, retriedKinds } from "../../model/sync-issue";
import type { StoredMapping } from "../../model/job-entry";
import { type CrmRow, crmColumns } from "../reconcile";
import { type RunContext, type RunDeps, crmPageSize, watermarkLagMs } from "./run-context";
import { ErpFeed, erpEntry } from "./erp-feed";
import { scopeColumns, scopeFilter } from "../../model/company-scope";

/** What a run reads: the ERP feed (read as the run goes), CRM changes and deletions, the retry list, the lag lists. */
export interface ChangeFeeds {
  erp: ErpFeed;
  crmFeed: CrmRow[];
  /** Change tracking since the last run; undefined on the first run or when Dataverse refused the link. */
  delta: Awaited<ReturnType<RunContext["client"]["trackChanges"]>> | undefined;
  issues: SyncIssue[];
  lagSeen: LagSeen;
  /** The CRM feed less what the last run processed within the lag. */
  crmRows: CrmRow[];
  /** Nothing to do: no new change, no deletion, nothing on the retry list. */
  quiet: boolean;
}

/**
 * Opens the ERP feed (changes after the ERP watermark, read as the run goes) and reads the CRM rows modified after the CRM
 * watermark, CRM deletions (the delta link), the retry list and the lag lists, all at once. Needs
 * `context.erpSafePoint`.
 */
export async function readChanges(deps: RunDeps, context: RunContext, state: StoredMapping): Promise<ChangeFeeds> {
  const { company, name, definition, client, full } = context;
  const erpSince = full ? undefined : state.erpWatermark;
  // CRM stamps come from Dataverse's clock: rows are read again from the lag before the watermark.
  const crmSince = full || !state.crmWatermark ? undefined : new Date(Date.parse(state.crmWatermark) - watermarkLagMs).toISOString();
  const [crmFeed, delta, issues, lagSeen] = await Promise.all([
    definition.direction === "toCrm"
      ? Promise.resolve([] as CrmRow[])
      : client.retrieveMultiple(definition.crmEntitySet, {
          select: [...crmColumns(definition), ...scopeColumns(context.setup, definition.crmEntitySet)],
          // Rows of other ERP companies on the same organization never reach this company's run.
          filter:
            [definition.crmFilter && `(${definition.crmFilter})`, scopeFilter(context.setup, definition.crmEntitySet), crmSince && `modifiedon gt ${crmSince}`]
              .filter(Boolean)
              .join(" and ") || undefined,
          orderBy: "modifiedon asc",
          pageSize: crmPageSize,
        }),
    // A delta link Dataverse no longer honours (expired, refused) is replaced by a fresh listing.
    state.crmDeltaLink
      ? client.trackChanges(definition.crmEntitySet, definition.crmKey, state.crmDeltaLink).catch((error: unknown) => {
          if (error instanceof DataverseRequestError && (error.status === 400 || error.status === 410)) return undefined;
          throw error;
        })
      : Promise.resolve(undefined),
    deps.init.issues.list(company, name),
    full ? { erp: [], crm: [] } : deps.init.sync.lagSeen(company, name),
  ]);
  // Entries read again only because of the lag, and already processed by the last run, are left out.
  const erp = new ErpFeed(deps.init.erpRecords.changes(company, definition.erpTable, erpSince), new Set(lagSeen.erp), context.erpSafePoint!);
  const seenCrm = new Set(lagSeen.crm);
  const crmRows = crmFeed.filter((row) => !seenCrm.has(crmEntry(context, row)));
  const quiet =
    (await erp.peek()) === undefined &&
    crmRows.length === 0 &&
    (!delta || delta.deleted.length === 0) &&
    !issues.some((issue) => retriedKinds.includes(issue.kind));
  return { erp, crmFeed, delta, issues, lagSeen, crmRows, quiet };
}

/**
 * ERP stamps come from this service's clocks: what is older than the lag when the read starts has committed, so
 * the ERP watermark never passes this point (and is read from as it is).
 */
export function erpSafePoint(now: Date): string {
  return `${new Date(now.getTime() - watermarkLagMs).toISOString()}-000000`;
}

/** What the CRM watermark needs of the CRM feed: each row's key and stamp, in feed order (far smaller than the rows). */
export type CrmStamps = { id: string; modifiedon: string }[];

export function crmStampsOf(context: RunContext, crmFeed: CrmRow[]): CrmStamps {
  return crmFeed.map((row) => ({ id: String(row[context.definition.crmKey]).toLowerCase(), modifiedon: String(row.modifiedon) }));
}

/** Where the watermarks move once every change read is done, and what the next run reads again but need not process. */
export function advancedWatermarks(context: RunContext, state: StoredMapping, erp: Pick<ErpFeed, "lastStamp" | "pastSafePoint">, crm: CrmStamps) {
  const lastErp = erp.lastStamp;
  const erpWatermark = lastErp ? maxStamp(state.erpWatermark, minStamp(lastErp, context.erpSafePoint)) : state.erpWatermark;
  const crmWatermark = crm.at(-1)?.modifiedon ?? state.crmWatermark;
  const seen: LagSeen = {
    erp: erpWatermark ? erp.pastSafePoint.filter((change) => change.modifiedAt > erpWatermark).map(erpEntry) : [],
    crm: crmWatermark
      ? crm.filter((row) => Date.parse(row.modifiedon) > Date.parse(crmWatermark) - watermarkLagMs).map((row) => `${row.id}@${row.modifiedon}`)
      : [],
  };
  return { erpWatermark, crmWatermark, seen };
}

export function minStamp(a: string, b: string | undefined): string {
  return b !== undefined && b < a ? b : a;
}

function maxStamp(a: string | undefined, b: string): string {
  return a !== undefined && a > b ? a : b;
}

function crmEntry(context: RunContext, row: CrmRow): string {
  return `${String(row[context.definition.crmKey]).toLowerCase()}@${String(row.modifiedon)}`;
}
