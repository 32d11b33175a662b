import * as z from "zod";
import { fieldErrorsFromZod, invalid, notFound } from "../errors";
import { countedStatuses, describeActiveJobs } from "../model/active-jobs";
import { requireCompany, requireSetup } from "../model/company";
import { storageContinuationToken } from "../storage/continuation-token";
import type { SetupRepository } from "../storage/setup-repository";
import type { SyncLogRepository } from "../storage/sync-log-repository";
import type { SyncRepository } from "../storage/sync-repository";
import type { MappingDefinition } from "./default-mappings";
import { jobView } from "./job-view";

const isoTime = z.iso.datetime({ offset: true, error: "must be an ISO 8601 time, e.g. 2026-11-26T00:00:00Z" });

export const logQuery = z.object({
  mapping: z.string().max(40).optional(),
  runId: z.string().max(40).optional(),
  direction: z.enum(["toCrm", "fromCrm"], 'must be "toCrm" or "fromCrm"').optional(),
  from: isoTime.optional(),
  to: isoTime.optional(),
  failedOnly: z
    .enum(["true", "false"], 'must be "true" or "false"')
    .transform((value) => value === "true")
    .optional(),
  top: z.coerce.number().int("must be a whole number").min(1).max(1000).default(50),
  continuationToken: storageContinuationToken.optional(),
});

export const logErrorsQuery = z.object({
  top: z.coerce.number().int("must be a whole number").min(1, "must be at least 1").max(1000, "must be at most 1000").default(100),
  continuationToken: storageContinuationToken.optional(),
});

export interface SyncViewsInit {
  sync: SyncRepository;
  setups: SetupRepository;
  logs: SyncLogRepository;
  clock?: () => Date;
}

/** What the admin reads of the synchronization: mappings, job entries with "X of Y", the log and its errors. */
export class SyncViews {
  constructor(private readonly init: SyncViewsInit) {}

  async mappings(company: string) {
    requireCompany(company);
    const mappings = await this.init.sync.mappings(company);
    const value = mappings.map(({ value, etag }) => ({
      ...(JSON.parse(value.definitionJson) as MappingDefinition),
      etag,
      erpWatermark: value.erpWatermark ?? null,
      crmWatermark: value.crmWatermark ?? null,
      lastSyncAt: value.lastSyncAt ?? null,
      lastSyncResult: value.lastSyncResult ?? null,
    }));
    return { value: value.sort((a, b) => a.dependencyOrder - b.dependencyOrder) };
  }

  async jobs(company: string) {
    const [setup, jobs] = await Promise.all([requireSetup(this.init.setups, company), this.init.sync.jobs(company)]);
    const now = this.init.clock?.() ?? new Date();
    const value = jobs.map(({ value }) => jobView(value, now));
    const activeScheduledSyncJobs = describeActiveJobs(countedStatuses(value, setup.value.integrationSolutionImported), setup.value.isEnabled);
    return { value, activeScheduledSyncJobs };
  }

  /** One page of the log, newest first, filtered; each row links to its errors and to the records its run left. */
  async log(company: string, query: unknown) {
    const { from, to, ...rest } = parse(logQuery, query);
    await requireSetup(this.init.setups, company);
    const page = await this.init.logs.page(company, {
      ...rest,
      // Stored times are UTC ISO strings: compare like with like.
      ...(from && { from: new Date(from).toISOString() }),
      ...(to && { to: new Date(to).toISOString() }),
    });
    const value = page.entries.map((entry) => ({ ...entry, links: logLinks(company, entry) }));
    return { value, ...(page.continuationToken && { continuationToken: page.continuationToken }) };
  }

  async logErrors(company: string, logId: string, query: unknown) {
    const options = parse(logErrorsQuery, query);
    await requireSetup(this.init.setups, company);
    if (!(await this.init.logs.exists(company, logId))) throw notFound(`The log of company "${company}" has no row "${logId}".`);
    const page = await this.init.logs.errors(company, logId, options);
    return { value: page.errors, ...(page.continuationToken && { continuationToken: page.continuationToken }) };
  }
}

function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw invalid(fieldErrorsFromZod(result.error));
  return result.data;
}

/** Where a log row's details are: its error rows, and the records its run left deferred, failed, in conflict or skipped. */
function logLinks(company: string, entry: { id: string; runId: string; mapping: string }) {
  const sync = `/api/companies/${company}/sync`;
  const run = `mapping=${encodeURIComponent(entry.mapping)}&runId=${encodeURIComponent(entry.runId)}`;
  return {
    errors: `${sync}/log/${encodeURIComponent(entry.id)}/errors`,
    issues: `${sync}/issues?${run}`,
    conflicts: `${sync}/conflicts?${run}`,
    skipped: `${sync}/skipped?${run}`,
  };
}
