// Over 250 lines: couplings, conflicts, skipped records and mapping settings; the next step splits couplings from issues.
import * as z from "zod";
import { type FieldError, conflict, fieldErrorsFromZod, invalid, notFound, stale, inputMessages } from "../errors";
import type { DataverseClient } from "../dataverse/dataverse-client";
import { companyMessages, requireSetup } from "../model/company";
import type { SetupRepository } from "../storage/setup-repository";
import { ConcurrencyError } from "../storage/setup-repository";
import type { SyncIssueRepository } from "../storage/sync-issue-repository";
import type { SyncRepository } from "../storage/sync-repository";
import type { CrmConnector } from "../connection/crm-connector";
import { DataverseRequestError } from "../dataverse/dataverse-errors";
import type { CouplingRepository } from "../storage/coupling-repository";
import type { ErpRecordRepository } from "../storage/erp-record-repository";
import { type MappingDefinition, defaultMappings } from "./default-mappings";
import { applyMappingPatch, mappingPatch } from "./mapping-settings";
import type { SyncIssue } from "../model/sync-issue";
import type { Coupling } from "../model/coupling";
import { mapLimit, pointReadParallelism } from "../map-limit";
import { companyBind, ownerOf, scopeColumns, scopeOf, withScope } from "../model/company-scope";
import { parseIssueKey } from "../model/sync-issue";
import type { SyncRunner } from "./sync-runner";
import { MappingBusyError, type MappingRunResult } from "./run/run-context";

export const issueQuery = z.object({
  kind: z.enum(["deferred", "failed", "conflict", "skipped"], 'must be "deferred", "failed", "conflict" or "skipped"').optional(),
  mapping: z.string().max(40).optional(),
  runId: z.string().max(80).optional(),
  top: z.coerce.number().int("must be a whole number").min(1, "must be at least 1").max(1000, "must be at most 1000").default(100),
  continuationToken: z.string().max(400).optional(),
});

export const resolveInput = z.strictObject({ keep: z.enum(["erp", "crm"], 'must be "erp" or "crm"') });

export const coupleInput = z.strictObject({ crmId: z.uuid("must be the CRM row's id (a GUID)") });
export const matchInput = z.strictObject({
  fields: z
    .array(z.string().min(1))
    .min(1, "must name at least one field")
    .max(5, "must name at most 5 fields")
    .superRefine((fields, context) => {
      fields.forEach((field, index) => {
        const first = fields.indexOf(field);
        if (first !== index) context.addIssue({ code: "custom", path: [index], message: `names the field of fields.${first} again` });
      });
    }),
  createIfNoMatch: z.boolean().default(false),
});

export const synchronizeInput = z.strictObject({ direction: z.enum(["toCrm", "fromCrm"], 'must be "toCrm" or "fromCrm"').optional() });
export const couplingQuery = z.object({
  mapping: z.string().max(40).optional(),
  status: z.enum(["coupled", "pending", "deferred", "failed", "conflict", "skipped"]).optional(),
  erpId: z.string().max(40).optional(),
  crmId: z.string().max(40).optional(),
  top: z.coerce.number().int("must be a whole number").min(1).max(1000).default(100),
  continuationToken: z.string().max(400).optional(),
});

export interface CouplingView {
  mapping: string;
  erpId: string;
  crmId: string;
  status: "coupled" | "pending" | SyncIssue["kind"];
  reason: string | null;
  lastSynchronized: Record<string, unknown> | null;
}

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
  /** The run that last tried the record. */
  runId: string | null;
  conflicts?: SyncIssue["conflicts"];
}

export const syncAdminMessages = {
  noSuchIssue: (id: string) => `No such record: "${id}".`,
  erpRecordMissing: (table: string, id: string) => `There is no ERP ${table} record "${id}".`,
  crmRowMissing: (set: string, id: string) => `There is no ${set} row "${id}" in Dynamics 365 Sales.`,
  erpAlreadyCoupled: (id: string, crmId: string) => `The ERP record "${id}" is already coupled to ${crmId}. Uncouple it first.`,
  crmAlreadyCoupled: (crmId: string, erpId: string) => `The CRM row ${crmId} is already coupled to the ERP record "${erpId}". Uncouple that one first.`,
  notCoupled: (id: string) => `The ERP record "${id}" is not coupled in this mapping.`,
  notCoupledToSynchronize: (id: string) =>
    `The ERP record "${id}" is not coupled in this mapping, so there is nothing to synchronize it with. Couple it (by hand or by matching), or let the next run create it.`,
  notEnabled: companyMessages.notEnabled,
  notAConflict: "The record is not in conflict (any more); nothing to resolve.",
  notSkipped: "The record is not skipped; it is retried on the next run anyway.",
  crmRowChanged: (set: string, crmId: string) =>
    `The ${set} row ${crmId} changed while it was being coupled (another ERP company may have taken it). Read it again and retry.`,
  otherCompanysRow: (set: string, crmId: string) =>
    `The ${set} row ${crmId} belongs to another ERP company synchronized with this organization (its company column names that company).`,
  mappingBusy: (mapping: string) =>
    `A synchronization of ${mapping} is running; its records are coupled, uncoupled and synchronized by hand between runs. Try again when it ends (GET .../sync/jobs shows its progress).`,
} as const;

/**
 * How long an admin's request waits for a run of the mapping to end before answering 409: a coupling change
 * only a few seconds; a synchronization by hand (synchronize, resolve, retry, match's creates) as it always did.
 */
const adminWaitMs = 5_000;
const syncWaitMs = 30_000;

/** Conflicts, skipped records and mapping settings: what an admin does beside the scheduled runs. */
export class SyncAdmin {
  constructor(
    private readonly init: {
      sync: SyncRepository;
      setups: SetupRepository;
      issues: SyncIssueRepository;
      runner: SyncRunner;
      couplings: CouplingRepository;
      erpRecords: ErpRecordRepository;
      connector: CrmConnector;
    },
  ) {}

  /** Couplings with their state (coupled, pending, or the issue that holds them), in mapping and ERP id order. */
  async listCouplings(company: string, query: unknown): Promise<{ value: CouplingView[]; continuationToken?: string }> {
    const input = couplingQuery.safeParse(query);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    await requireSetup(this.init.setups, company);
    const { mapping, status, erpId, crmId, top, continuationToken } = input.data;
    const stored = (await this.init.sync.mappings(company)).map(({ value }) => value.name);
    const names = defaultMappings.map((definition) => definition.name as string).filter((name) => stored.includes(name) && (!mapping || name === mapping));
    let after: [number, string] | undefined;
    if (continuationToken) {
      try {
        after = JSON.parse(Buffer.from(continuationToken, "base64url").toString("utf8")) as [number, string];
        if (!Array.isArray(after) || typeof after[0] !== "number" || typeof after[1] !== "string") throw new Error("shape");
      } catch {
        throw invalid([{ path: "continuationToken", message: inputMessages.foreignToken }]);
      }
    }
    const value: CouplingView[] = [];
    const issueKinds: readonly string[] = ["deferred", "failed", "conflict", "skipped"];
    for (const [index, name] of names.entries()) {
      if (after && index < after[0]) continue;
      const from = after && index === after[0] ? after[1] : undefined;
      // The records that did not synchronize are few: read once per mapping, they say each coupling's state.
      const issues = await this.init.issues.list(company, name);
      const issueOf = (coupling: Coupling) => issues.find((candidate) => candidate.erpId === coupling.erpId || candidate.sourceId === coupling.erpId);
      const viewOf = (coupling: Coupling): CouplingView | undefined => {
        const issue = issueOf(coupling);
        const state: CouplingView["status"] = coupling.pending ? "pending" : (issue?.kind ?? "coupled");
        if (status && state !== status) return undefined;
        if (crmId && coupling.crmId.toLowerCase() !== crmId.toLowerCase()) return undefined;
        return {
          mapping: name,
          erpId: coupling.erpId,
          crmId: coupling.crmId,
          status: state,
          reason: issue?.reason ?? null,
          lastSynchronized: coupling.synced ?? null,
        };
      };
      // Where the filter names the records (an ERP id, a CRM id, a kind of issue), only those are read; otherwise
      // the mapping's couplings are read a page at a time in ERP id order.
      let named: Coupling[] | undefined;
      if (erpId !== undefined) named = [...(await this.couplingsOf(company, name, { erpIds: [erpId] })).byErp.values()];
      else if (crmId !== undefined) named = [...(await this.couplingsOf(company, name, { crmIds: [crmId] })).byCrm.values()];
      else if (status && issueKinds.includes(status))
        named = [
          ...(
            await this.init.couplings.byErpIds(
              company,
              name,
              issues.filter((issue) => issue.kind === status && issue.erpId).map((issue) => issue.erpId!),
            )
          ).values(),
        ];
      if (named) {
        for (const coupling of named.sort((a, b) => (a.erpId < b.erpId ? -1 : a.erpId > b.erpId ? 1 : 0))) {
          if (from !== undefined && coupling.erpId <= from) continue;
          const view = viewOf(coupling);
          if (view) value.push(view);
          if (value.length === top) return { value, continuationToken: Buffer.from(JSON.stringify([index, coupling.erpId])).toString("base64url") };
        }
        continue;
      }
      for (let last = from; ;) {
        const page = await this.init.couplings.pageAfter(company, name, last, top);
        for (const coupling of page) {
          last = coupling.erpId;
          const view = viewOf(coupling);
          if (view) value.push(view);
          if (value.length === top) return { value, continuationToken: Buffer.from(JSON.stringify([index, coupling.erpId])).toString("base64url") };
        }
        if (page.length < top) break;
      }
    }
    return { value };
  }

  /**
   * Couplings of the named records: by key through the CRM id index once a run has indexed the mapping; a
   * mapping not indexed yet (no run since the index came) is read whole, as before.
   */
  private async couplingsOf(
    company: string,
    mapping: string,
    ids: { erpIds?: string[]; crmIds?: string[] },
  ): Promise<{ byErp: Map<string, Coupling>; byCrm: Map<string, Coupling> }> {
    const indexed = (await this.init.sync.mapping(company, mapping))?.value.crmIdIndexed === true;
    if (!indexed) {
      const all = await this.init.couplings.load(company, mapping);
      const erpIds = new Set(ids.erpIds ?? []);
      const crmIds = new Set((ids.crmIds ?? []).map((id) => id.toLowerCase()));
      return {
        byErp: new Map(all.filter((coupling) => erpIds.has(coupling.erpId)).map((coupling) => [coupling.erpId, coupling])),
        byCrm: new Map(all.filter((coupling) => crmIds.has(coupling.crmId.toLowerCase())).map((coupling) => [coupling.crmId.toLowerCase(), coupling])),
      };
    }
    const [byErp, byCrm] = await Promise.all([
      ids.erpIds?.length ? this.init.couplings.byErpIds(company, mapping, ids.erpIds) : new Map<string, Coupling>(),
      ids.crmIds?.length ? this.init.couplings.byCrmIds(company, mapping, ids.crmIds) : new Map<string, Coupling>(),
    ]);
    return { byErp, byCrm };
  }

  /** Couples an ERP record to a CRM row by hand: both must exist and neither be coupled elsewhere. */
  async couple(company: string, mapping: string, erpId: string, body: unknown): Promise<CouplingView> {
    const input = coupleInput.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const { definition, setup } = await this.requireMapping(company, mapping);
    const crmId = input.data.crmId.toLowerCase();
    const record = await this.init.erpRecords.get(company, definition.erpTable, erpId);
    if (!record || record.deleted) throw notFound(syncAdminMessages.erpRecordMissing(definition.erpTable, erpId));
    const taken = async () => {
      const { byErp, byCrm } = await this.couplingsOf(company, mapping, { erpIds: [erpId], crmIds: [crmId] });
      const mine = byErp.get(erpId);
      if (mine && mine.crmId.toLowerCase() !== crmId) throw conflict(syncAdminMessages.erpAlreadyCoupled(erpId, mine.crmId));
      const theirs = byCrm.get(crmId);
      if (theirs && theirs.erpId !== erpId) throw conflict(syncAdminMessages.crmAlreadyCoupled(crmId, theirs.erpId));
    };
    await taken();
    if (!setup.isEnabled) throw conflict(syncAdminMessages.notEnabled);
    const client = await this.init.connector.client(setup);
    let row: Record<string, unknown>;
    try {
      row = await client.retrieve(definition.crmEntitySet, crmId, [definition.crmKey, ...scopeColumns(setup, definition.crmEntitySet)]);
    } catch (error) {
      if (error instanceof DataverseRequestError && error.status === 404) throw notFound(syncAdminMessages.crmRowMissing(definition.crmEntitySet, crmId));
      throw error;
    }
    // Another ERP company's row is not this company's to couple.
    if (ownerOf(setup, definition.crmEntitySet, row) === "other") throw conflict(syncAdminMessages.otherCompanysRow(definition.crmEntitySet, crmId));
    // A new coupling has no common past: the next synchronization settles differences by the mapping's direction.
    await this.holding(company, mapping, async () => {
      // Checked again under the hold: a run may have coupled either side since.
      await taken();
      // An unclaimed row becomes this company's, on the ETag it was read with: another company coupling it at the
      // same moment, or taking it since, makes this a 409 with nothing written.
      if (ownerOf(setup, definition.crmEntitySet, row) === "unclaimed") {
        try {
          await client.update(definition.crmEntitySet, crmId, companyBind(scopeOf(setup, definition.crmEntitySet)!), String(row["@odata.etag"] ?? "*"));
        } catch (error) {
          if (error instanceof DataverseRequestError && error.status === 412) throw conflict(syncAdminMessages.crmRowChanged(definition.crmEntitySet, crmId));
          throw error;
        }
      }
      await this.init.couplings.save(company, mapping, [{ erpId, crmId, pending: false }]);
      await this.init.issues.remove(company, mapping, [
        { side: "erp", sourceId: erpId },
        { side: "crm", sourceId: crmId },
      ]);
    });
    return { mapping, erpId, crmId, status: "coupled", reason: null, lastSynchronized: null };
  }

  async uncouple(company: string, mapping: string, erpId: string): Promise<void> {
    await this.requireMapping(company, mapping);
    await this.holding(company, mapping, async () => {
      const coupling = (await this.couplingsOf(company, mapping, { erpIds: [erpId] })).byErp.get(erpId);
      if (!coupling) throw notFound(syncAdminMessages.notCoupled(erpId));
      await this.init.couplings.remove(company, mapping, [erpId]);
      await this.init.issues.remove(company, mapping, [
        { side: "erp", sourceId: erpId },
        { side: "crm", sourceId: coupling.crmId.toLowerCase() },
      ]);
    });
  }

  /**
   * An admin's change of couplings holds the mapping as a run does (a run in progress would otherwise couple
   * the record again, to a row of its own). A run that goes on past a short wait is a 409 naming it.
   */
  private holding<T>(company: string, mapping: string, work: () => Promise<T>): Promise<T> {
    return busyAsConflict(mapping, this.init.runner.whileHolding(company, mapping, adminWaitMs, work));
  }

  /** Synchronizes one record now, both ways by field, or one way when a direction is given. */
  async synchronize(company: string, mapping: string, erpId: string, body: unknown): Promise<MappingRunResult> {
    const input = synchronizeInput.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const { definition, setup } = await this.requireMapping(company, mapping);
    const { direction } = input.data;
    if (direction && definition.direction !== "both" && direction !== definition.direction)
      throw invalid([{ path: "direction", message: `must be "${definition.direction}": the ${mapping} mapping synchronizes only that way` }]);
    const record = await this.init.erpRecords.get(company, definition.erpTable, erpId);
    if (!record || record.deleted) throw notFound(syncAdminMessages.erpRecordMissing(definition.erpTable, erpId));
    if (!(await this.init.couplings.get(company, mapping, erpId))) throw conflict(syncAdminMessages.notCoupledToSynchronize(erpId));
    if (!setup.isEnabled) throw conflict(syncAdminMessages.notEnabled);
    return busyAsConflict(
      mapping,
      this.init.runner.syncRecords(
        company,
        mapping,
        { erpIds: [erpId], ...(input.data.direction && { direction: input.data.direction }) },
        { waitForLeaseMs: syncWaitMs },
      ),
    );
  }

  /**
   * Match-based coupling (BC's "Match-based coupling"): each uncoupled ERP record is coupled to the one uncoupled
   * CRM row whose mapped columns hold the same values (case and surrounding spaces ignored); several candidates
   * are reported, not guessed; with createIfNoMatch a record with no candidate is created in CRM.
   */
  async match(company: string, mapping: string, body: unknown): Promise<{ coupled: number; created: number; ambiguous: string[]; unmatched: string[] }> {
    const input = matchInput.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const { definition, setup } = await this.requireMapping(company, mapping);
    const fields = input.data.fields.map((name, index) => {
      const field = definition.fields.find((candidate) => candidate.erp === name && !candidate.lookup);
      if (!field) throw invalid([{ path: `fields[${index}]`, message: `is not a field of the ${mapping} mapping that can be matched` }]);
      return field;
    });
    if (!setup.isEnabled) throw conflict(syncAdminMessages.notEnabled);
    const couplings = await this.init.couplings.load(company, mapping);
    const coupledErp = new Set(couplings.map((coupling) => coupling.erpId));
    const coupledCrm = new Set(couplings.map((coupling) => coupling.crmId.toLowerCase()));
    const normalize = (value: unknown) => (value === undefined || value === null ? "" : String(value).trim().toLowerCase());
    const client = await this.init.connector.client(setup);
    // Candidates within the mapping's filter and the company's rows (its own, and those nobody took yet).
    const scoped = withScope(setup, definition.crmEntitySet, definition.crmFilter);
    const rows = await client.retrieveMultiple(definition.crmEntitySet, {
      select: [definition.crmKey, ...fields.map((field) => field.crm), ...scopeColumns(setup, definition.crmEntitySet)],
      ...(scoped && { filter: scoped }),
    });
    // Unclaimed rows, with the ETag each was read with.
    const unclaimed = new Map(
      rows
        .filter((row) => ownerOf(setup, definition.crmEntitySet, row) === "unclaimed")
        .map((row) => [String(row[definition.crmKey]).toLowerCase(), String(row["@odata.etag"] ?? "*")]),
    );
    const candidates = new Map<string, string[]>();
    for (const row of rows) {
      const crmId = String(row[definition.crmKey]).toLowerCase();
      if (coupledCrm.has(crmId)) continue;
      const key = JSON.stringify(fields.map((field) => normalize(row[field.crm])));
      candidates.set(key, [...(candidates.get(key) ?? []), crmId]);
    }
    const records = (await this.init.erpRecords.changedSince(company, definition.erpTable, undefined)).filter(
      (record) => !record.deleted && !coupledErp.has(record.id),
    );
    const result = { coupled: 0, created: 0, ambiguous: [] as string[], unmatched: [] as string[] };
    const toCreate: string[] = [];
    const newCouplings: Coupling[] = [];
    for (const record of records) {
      const values = fields.map((field) => normalize(record.fields[field.erp]));
      if (values.every((value) => value === "")) {
        result.unmatched.push(record.id);
        continue;
      }
      const found = candidates.get(JSON.stringify(values)) ?? [];
      if (found.length === 1) {
        newCouplings.push({ erpId: record.id, crmId: found[0]!, pending: false });
        candidates.delete(JSON.stringify(values));
        result.coupled++;
      } else if (found.length > 1) result.ambiguous.push(record.id);
      else if (input.data.createIfNoMatch) toCreate.push(record.id);
      else result.unmatched.push(record.id);
    }
    await this.holding(company, mapping, async () => {
      // Couplings a run made since the rows were read win: those records are not coupled again here.
      const now = await this.init.couplings.load(company, mapping);
      const erpTaken = new Set(now.map((coupling) => coupling.erpId));
      const crmTaken = new Set(now.map((coupling) => coupling.crmId.toLowerCase()));
      const still = newCouplings.filter((coupling) => !erpTaken.has(coupling.erpId) && !crmTaken.has(coupling.crmId));
      // An unclaimed row is taken on the ETag it was read with: one another company took since is not coupled.
      const companyId = scopeOf(setup, definition.crmEntitySet);
      const lost = new Set<string>();
      if (companyId)
        await mapLimit(
          still.filter((coupling) => unclaimed.has(coupling.crmId)),
          pointReadParallelism,
          async (coupling) => {
            try {
              await client.update(definition.crmEntitySet, coupling.crmId, companyBind(companyId), unclaimed.get(coupling.crmId)!);
            } catch (error) {
              if (!(error instanceof DataverseRequestError) || (error.status !== 412 && error.status !== 404)) throw error;
              lost.add(coupling.crmId);
            }
          },
        );
      const coupled = still.filter((coupling) => !lost.has(coupling.crmId));
      for (const coupling of still) if (lost.has(coupling.crmId)) result.unmatched.push(coupling.erpId);
      result.coupled = coupled.length;
      await this.init.couplings.save(company, mapping, coupled);
    });
    if (toCreate.length > 0) {
      const run = await busyAsConflict(mapping, this.init.runner.syncRecords(company, mapping, { erpIds: toCreate }, { waitForLeaseMs: syncWaitMs }));
      result.created = run.logs.reduce((sum, log) => sum + (log.direction === "toCrm" ? log.inserted : 0), 0);
    }
    return result;
  }

  private async requireMapping(company: string, mapping: string) {
    const setup = await requireSetup(this.init.setups, company);
    const stored = await this.init.sync.mapping(company, mapping);
    if (!stored) throw notFound(`Company "${company}" has no mapping "${mapping}".`);
    return { definition: JSON.parse(stored.value.definitionJson) as MappingDefinition, setup: setup.value };
  }

  /**
   * Records that did not synchronize (deferred, failed, conflicts, skipped), newest first, filtered by kind,
   * mapping and the run that last tried them, and paged.
   */
  async list(company: string, query: unknown, fixedKind?: SyncIssue["kind"]): Promise<{ value: IssueView[]; continuationToken?: string }> {
    const input = issueQuery.safeParse(query);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    await requireSetup(this.init.setups, company);
    const { kind = fixedKind, mapping, runId, top, continuationToken } = input.data;
    if (fixedKind && kind !== fixedKind) throw invalid([{ path: "kind", message: `must be "${fixedKind}" here` }]);
    const issues = (await this.init.issues.list(company, mapping))
      .filter((issue) => (!kind || issue.kind === kind) && (!runId || issue.runId === runId))
      .sort((a, b) => (a.lastAt !== b.lastAt ? (a.lastAt < b.lastAt ? 1 : -1) : a.id < b.id ? -1 : 1));
    let start = 0;
    if (continuationToken) {
      const after = Buffer.from(continuationToken, "base64url").toString("utf8");
      start = issues.findIndex((issue) => `${issue.lastAt}|${issue.id}` === after) + 1;
      if (start === 0) throw invalid([{ path: "continuationToken", message: `${inputMessages.foreignToken} (or its record was resolved meanwhile)` }]);
    }
    const page = issues.slice(start, start + top);
    const last = page.at(-1);
    return {
      value: page.map(viewOf),
      ...(last && start + top < issues.length && { continuationToken: Buffer.from(`${last.lastAt}|${last.id}`).toString("base64url") }),
    };
  }

  /** Applies the chosen side's values to the other side for the conflicting fields (and synchronizes the rest). */
  async resolve(company: string, id: string, body: unknown): Promise<{ issue: IssueView; result: MappingRunResult }> {
    const input = resolveInput.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const issue = await this.requireIssue(company, id);
    if (issue.kind !== "conflict") throw conflict(syncAdminMessages.notAConflict);
    const result = await busyAsConflict(
      issue.mapping,
      this.init.runner.syncRecords(
        company,
        issue.mapping,
        { ...selectionOf(issue), resolution: input.data.keep === "erp" ? "sendUpdateToIntegration" : "getUpdateFromIntegration" },
        { waitForLeaseMs: syncWaitMs },
      ),
    );
    return { issue: viewOf(issue), result };
  }

  /** Restores a skipped record: its attempts start again, and it is synchronized now. */
  async retry(company: string, id: string): Promise<{ issue: IssueView; result: MappingRunResult }> {
    const issue = await this.requireIssue(company, id);
    if (issue.kind !== "skipped") throw conflict(syncAdminMessages.notSkipped);
    await this.init.issues.save(company, issue.mapping, [{ ...issue, kind: "failed", attempts: 0 }]);
    const result = await busyAsConflict(
      issue.mapping,
      this.init.runner.syncRecords(company, issue.mapping, selectionOf(issue), { waitForLeaseMs: syncWaitMs }),
    );
    return { issue: viewOf(issue), result };
  }

  /**
   * Changes a mapping's settings and field mappings (validated as a whole: nothing is stored when any rule
   * fails). A changed CRM filter is tried on Dataverse first, so a filter it refuses is a 400 now, not a
   * failed run at night.
   */
  async updateMapping(
    company: string,
    name: string,
    body: unknown,
    { ifMatch, ifNoneMatch }: { ifMatch?: string; ifNoneMatch?: string } = {},
  ): Promise<{ mapping: MappingDefinition; etag: string }> {
    const input = mappingPatch.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    await requireSetup(this.init.setups, company);
    // If-Match: "*", or a list of ETags any of which may match (RFC 9110 13.1.1).
    const tags = ifMatch?.split(",").map((tag) => tag.trim()) ?? [];
    const conditional = ifMatch !== undefined && !tags.includes("*");
    let filterTried = false;
    // Without a version to check, the change applies to what is stored now: a run saving its watermark
    // meanwhile is merged with, not reported as a conflict. With If-Match, any change since is a 412.
    for (let attempt = 0; ; attempt++) {
      const stored = await this.init.sync.mapping(company, name);
      if (!stored) throw notFound(`Company "${company}" has no mapping "${name}".`);
      if (conditional && !tags.includes(stored.etag)) throw stale("The mapping was changed since you read it. Read it again and retry.");
      // If-None-Match asks for a change only where the mapping is not (as "*" says) or not in this version: it is.
      if (ifNoneMatch !== undefined && (ifNoneMatch.trim() === "*" || ifNoneMatch.split(",").some((tag) => tag.trim() === stored.etag)))
        throw stale(`The mapping ${name} exists (If-None-Match: ${ifNoneMatch.trim() === "*" ? "*" : "its ETag"}); a mapping is only changed, never created.`);
      const applied = applyMappingPatch(JSON.parse(stored.value.definitionJson) as MappingDefinition, input.data);
      if ("errors" in applied) throw invalid(applied.errors);
      const definition = applied.definition;
      if (input.data.crmFilter && !filterTried) await this.tryCrmFilter(company, definition, input.data.crmFilter);
      filterTried = true;
      try {
        const etag = await this.init.sync.saveMapping({ ...stored.value, definitionJson: JSON.stringify(definition) }, stored.etag);
        return { mapping: definition, etag };
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        if (conditional || attempt >= 4) throw stale("The mapping was changed meanwhile (a run may have saved its watermark). Read it again and retry.");
      }
    }
  }

  /**
   * Tries a filter on Dataverse with the stored connection, enabled or not. While the connection is disabled and
   * Dataverse cannot be reached with it (settings incomplete, sign-in refused), the filter is kept and tried when
   * the connection is enabled (crmFilterProblems), which refuses to enable with a filter Dataverse refuses.
   */
  private async tryCrmFilter(company: string, definition: MappingDefinition, filter: string): Promise<void> {
    const setup = await this.init.setups.get(company);
    if (!setup) return;
    let problem: FieldError | undefined;
    try {
      problem = await crmFilterProblem(await this.init.connector.client(setup.value), definition, filter, "crmFilter");
    } catch (error) {
      if (setup.value.isEnabled) throw error;
    }
    if (problem) throw invalid([problem]);
  }

  private async requireIssue(company: string, id: string): Promise<SyncIssue> {
    await requireSetup(this.init.setups, company);
    const key = parseIssueKey(id);
    // Only the mappings there are: an id naming "../x" or "a/b" is no record of this company.
    const known = key && defaultMappings.some((mapping) => mapping.name === key.mapping);
    const issue = known && (await this.init.issues.get(company, key.mapping, key.side, key.sourceId));
    if (!issue) throw notFound(syncAdminMessages.noSuchIssue(id));
    return issue;
  }
}

/** A run of the mapping that goes on past the wait: the admin's request answers 409 naming it, not 500. */
async function busyAsConflict<T>(mapping: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof MappingBusyError) throw conflict(syncAdminMessages.mappingBusy(mapping));
    throw error;
  }
}

/** Dataverse's word on a mapping's CRM filter (one row asked for): the field and the reason it was refused. */
export async function crmFilterProblem(client: DataverseClient, definition: MappingDefinition, filter: string, path: string): Promise<FieldError | undefined> {
  try {
    await client.retrieveMultiple(definition.crmEntitySet, { select: [definition.crmKey], filter, top: 1 });
    return undefined;
  } catch (error) {
    if (error instanceof DataverseRequestError && error.status === 400) return { path, message: `is refused by Dynamics 365 Sales: ${error.message}` };
    throw error;
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
    runId: issue.runId ?? null,
    ...(issue.conflicts && { conflicts: issue.conflicts }),
  };
}
