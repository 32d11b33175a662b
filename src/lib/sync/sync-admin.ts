import * as z from "zod";
import { badRequest, conflict, fieldErrorsFromZod, notFound, preconditionFailed } from "../http/problem";
import { requireCompany } from "../setup/setup-service";
import type { SetupRepository } from "../storage/setup-repository";
import { ConcurrencyError } from "../storage/setup-repository";
import type { SyncIssueRepository } from "../storage/sync-issue-repository";
import type { SyncRepository } from "../storage/sync-repository";
import { type MappingDefinition, deletionConflictResolutions, updateConflictResolutions } from "./default-mappings";
import type { SyncIssue } from "./sync-issue";
import { parseIssueKey } from "./sync-issue";
import type { MappingRunResult, SyncRunner } from "./sync-runner";

/** The mapping settings an admin changes (BC's Integration Table Mapping card: conflicts, deletions, attempts). */
export const mappingPatch = z
  .strictObject({
    updateConflictResolution: z.enum(updateConflictResolutions).optional(),
    deletionConflictResolution: z.enum(deletionConflictResolutions).optional(),
    maxAttempts: z.number().int("must be a whole number").min(1, "must be at least 1").max(100, "must be at most 100").optional(),
    onlyCoupledRecords: z.boolean().optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, { message: "must change at least one setting" });

export const resolveInput = z.strictObject({ keep: z.enum(["erp", "crm"], "must be \"erp\" or \"crm\"") });

export interface IssueView {
  id: string;
  mapping: string;
  kind: SyncIssue["kind"];
  erpId: string | null;
  crmId: string | null;
  direction: SyncIssue["direction"];
  attempts: number;
  reason: string;
  firstAt: string;
  lastAt: string;
  conflicts?: SyncIssue["conflicts"];
}

export const syncAdminMessages = {
  noSuchIssue: (id: string) => `No such record: "${id}".`,
  notAConflict: "The record is not in conflict (any more); nothing to resolve.",
  notSkipped: "The record is not skipped; it is retried on the next run anyway.",
} as const;

/** Conflicts, skipped records and mapping settings: what an admin does beside the scheduled runs. */
export class SyncAdmin {
  constructor(private readonly init: { sync: SyncRepository; setups: SetupRepository; issues: SyncIssueRepository; runner: SyncRunner }) {}

  async list(company: string, kind: SyncIssue["kind"] | "open"): Promise<IssueView[]> {
    await this.requireSetup(company);
    const issues = await this.init.issues.list(company);
    return issues.filter((issue) => (kind === "open" ? issue.kind !== "skipped" : issue.kind === kind)).sort((a, b) => (a.lastAt < b.lastAt ? 1 : -1)).map(viewOf);
  }

  /** Applies the chosen side's values to the other side for the conflicting fields (and synchronizes the rest). */
  async resolve(company: string, id: string, body: unknown): Promise<{ issue: IssueView; result: MappingRunResult }> {
    const input = resolveInput.safeParse(body);
    if (!input.success) throw badRequest(fieldErrorsFromZod(input.error));
    const issue = await this.requireIssue(company, id);
    if (issue.kind !== "conflict") throw conflict(syncAdminMessages.notAConflict);
    const result = await this.init.runner.syncRecords(company, issue.mapping, {
      ...selectionOf(issue),
      resolution: input.data.keep === "erp" ? "sendUpdateToIntegration" : "getUpdateFromIntegration",
    }, { waitForLeaseMs: 30_000 });
    return { issue: viewOf(issue), result };
  }

  /** Restores a skipped record: its attempts start again, and it is synchronized now. */
  async retry(company: string, id: string): Promise<{ issue: IssueView; result: MappingRunResult }> {
    const issue = await this.requireIssue(company, id);
    if (issue.kind !== "skipped") throw conflict(syncAdminMessages.notSkipped);
    await this.init.issues.save(company, issue.mapping, [{ ...issue, kind: "failed", attempts: 0 }]);
    const result = await this.init.runner.syncRecords(company, issue.mapping, selectionOf(issue), { waitForLeaseMs: 30_000 });
    return { issue: viewOf(issue), result };
  }

  async updateMapping(company: string, name: string, body: unknown, ifMatch: string | undefined): Promise<{ mapping: MappingDefinition; etag: string }> {
    const input = mappingPatch.safeParse(body);
    if (!input.success) throw badRequest(fieldErrorsFromZod(input.error));
    await this.requireSetup(company);
    const stored = await this.init.sync.mapping(company, name);
    if (!stored) throw notFound(`Company "${company}" has no mapping "${name}".`);
    if (ifMatch && ifMatch !== "*" && ifMatch !== stored.etag) throw preconditionFailed("The mapping was changed since you read it. Read it again and retry.");
    const definition = { ...(JSON.parse(stored.value.definitionJson) as MappingDefinition), ...input.data };
    try {
      const etag = await this.init.sync.saveMapping({ ...stored.value, definitionJson: JSON.stringify(definition) }, stored.etag);
      return { mapping: definition, etag };
    } catch (error) {
      if (error instanceof ConcurrencyError) throw preconditionFailed("The mapping was changed meanwhile (a run may have saved its watermark). Read it again and retry.");
      throw error;
    }
  }

  private async requireSetup(company: string): Promise<void> {
    requireCompany(company);
    if (!(await this.init.setups.get(company))) throw notFound(`No connection is set up for company "${company}".`);
  }

  private async requireIssue(company: string, id: string): Promise<SyncIssue> {
    await this.requireSetup(company);
    const key = parseIssueKey(id);
    const issue = key && (await this.init.issues.get(company, key.mapping, key.side, key.sourceId));
    if (!issue) throw notFound(syncAdminMessages.noSuchIssue(id));
    return issue;
  }
}

function selectionOf(issue: SyncIssue): { erpIds?: string[]; crmIds?: string[] } {
  return issue.side === "erp" ? { erpIds: [issue.sourceId] } : { crmIds: [issue.sourceId] };
}

function viewOf(issue: SyncIssue): IssueView {
  return {
    id: issue.id,
    mapping: issue.mapping,
    kind: issue.kind,
    erpId: issue.erpId ?? null,
    crmId: issue.crmId ?? null,
    direction: issue.direction,
    attempts: issue.attempts,
    reason: issue.reason,
    firstAt: issue.firstAt,
    lastAt: issue.lastAt,
    ...(issue.conflicts && { conflicts: issue.conflicts }),
  };
}
