import { randomUUID } from "node:crypto";
import type { Config } from "../config";
import type { CrmConnector } from "../connection/crm-connector";
import type { DataverseClient } from "../dataverse/dataverse-client";
import { DataverseRequestError } from "../dataverse/dataverse-errors";
import { erpSchemas, type ErpFields } from "../erp/erp-schemas";
import type { ConnectionSetup } from "../setup/connection-setup";
import type { CouplingRepository } from "../storage/coupling-repository";
import type { ErpRecordRepository } from "../storage/erp-record-repository";
import type { SetupRepository } from "../storage/setup-repository";
import { type SyncErrorEntry, type SyncLogEntry, SyncLogRepository } from "../storage/sync-log-repository";
import type { SyncRepository } from "../storage/sync-repository";
import type { Coupling } from "./coupling";
import type { MappingDefinition } from "./default-mappings";
import type { StoredMapping } from "./job-entry";
import {
  type CrmRow,
  type CrmWrite,
  type ErpChange,
  type Failure,
  type Lookups,
  type SyncCounts,
  crmColumns,
  emptyCounts,
  planFromCrm,
  planToCrm,
  syncMessages,
} from "./sync-plan";

export interface MappingRunOptions {
  runId?: string;
  /** Epoch ms after which no new wave starts; the next run continues from the watermark. */
  deadline?: number;
  /** Full synchronization: ignore watermarks and include uncoupled records. */
  full?: boolean;
  client?: DataverseClient;
  setup?: ConnectionSetup;
}

export interface MappingRunResult {
  mapping: string;
  runId: string;
  logs: SyncLogEntry[];
  /** The time budget ran out before all changes were processed. */
  stoppedEarly: boolean;
}

export interface SyncRunnerInit {
  sync: SyncRepository;
  couplings: CouplingRepository;
  erpRecords: ErpRecordRepository;
  logs: SyncLogRepository;
  connector: CrmConnector;
  setups: SetupRepository;
  config: Pick<Config, "SYNC_BATCH_SIZE" | "SYNC_MAX_PARALLEL">;
  clock?: () => Date;
  newId?: () => string;
}

const crmPageSize = 5000;

/** Runs one mapping (BEHAVIOUR §6): CRM changes are read first, then ERP -> CRM, then CRM -> ERP. */
export class SyncRunner {
  private readonly clock: () => Date;
  private readonly newId: () => string;

  constructor(private readonly init: SyncRunnerInit) {
    this.clock = init.clock ?? (() => new Date());
    this.newId = init.newId ?? randomUUID;
  }

  async runMapping(company: string, name: string, options: MappingRunOptions = {}): Promise<MappingRunResult> {
    const runId = options.runId ?? randomUUID();
    const stored = await this.init.sync.mapping(company, name);
    if (!stored) throw new Error(`Company ${company} has no mapping ${name}.`);
    let mappingEtag = stored.etag;
    let mappingState = stored.value;
    const definition = JSON.parse(stored.value.definitionJson) as MappingDefinition;
    const setup = options.setup ?? (await this.init.setups.get(company))?.value;
    if (!setup) throw new Error(`Company ${company} has no connection setup.`);
    const client = options.client ?? (await this.init.connector.client(setup));
    const integrationUserId = (setup.connectionUserId ?? (await client.whoAmI()).UserId).toLowerCase();
    const full = options.full === true;
    const erpWatermark = full ? undefined : mappingState.erpWatermark;
    const crmWatermark = full ? undefined : mappingState.crmWatermark;

    const [couplingList, lookups] = await Promise.all([this.init.couplings.load(company, name), this.loadLookups(company, definition)]);
    const byErp = new Map(couplingList.map((coupling) => [coupling.erpId, coupling]));
    const byCrm = new Map(couplingList.map((coupling) => [coupling.crmId.toLowerCase(), coupling]));
    const saveMapping = async (change: Partial<Pick<StoredMapping, "erpWatermark" | "crmWatermark" | "lastSyncAt" | "lastSyncResult">>) => {
      mappingState = { ...mappingState, ...change };
      mappingEtag = await this.init.sync.saveMapping(mappingState, mappingEtag);
    };

    const logs: SyncLogEntry[] = [];
    let stoppedEarly = false;
    const outOfTime = () => options.deadline !== undefined && Date.now() >= options.deadline;

    // CRM changes by others since the last sync; read first so ERP -> CRM can apply the conflict rule.
    let crmRows: CrmRow[] = [];
    const crmStarted = this.clock();
    if (definition.direction !== "toCrm") {
      const filters = [
        definition.crmFilter && `(${definition.crmFilter})`,
        crmWatermark && `modifiedon gt ${new Date(Date.parse(crmWatermark) - 1000).toISOString()}`,
        `_modifiedby_value ne ${integrationUserId}`,
      ].filter(Boolean);
      crmRows = await client.retrieveMultiple(definition.crmEntitySet, { select: crmColumns(definition), filter: filters.join(" and "), orderBy: "modifiedon asc", pageSize: crmPageSize });
    }
    const crmChanged = new Map<string, string>();
    for (const row of crmRows) {
      const crmId = String(row[definition.crmKey]).toLowerCase();
      const coupling = byCrm.get(crmId);
      if (coupling && !(coupling.crmModifiedOn && Date.parse(String(row.modifiedon)) <= Date.parse(coupling.crmModifiedOn))) crmChanged.set(crmId, String(row.modifiedon));
    }

    // ERP -> CRM
    const writtenThisRun = new Set<string>();
    const erpChanges = definition.direction !== "fromCrm" || crmRows.length > 0 ? await this.init.erpRecords.changedSince(company, definition.erpTable, erpWatermark) : [];
    if (definition.direction !== "fromCrm") {
      const started = this.clock();
      const counts = emptyCounts();
      const errors: SyncErrorEntry[] = [];
      const waveSize = this.init.config.SYNC_BATCH_SIZE * Math.max(1, this.init.config.SYNC_MAX_PARALLEL);
      for (let start = 0; start < erpChanges.length; start += waveSize) {
        if (outOfTime()) {
          stoppedEarly = true;
          break;
        }
        const wave = erpChanges.slice(start, start + waveSize);
        const plan = planToCrm({ mapping: definition, changes: wave, couplings: byErp, lookups, crmChanged, includeUncoupled: full, newId: this.newId });
        const results = await this.applyToCrm(company, definition, client, plan.writes, byErp);
        const couplingUpdates: Coupling[] = [];
        for (const write of results.succeeded) {
          const previous = byErp.get(write.erpId);
          const coupling: Coupling = {
            erpId: write.erpId,
            crmId: write.crmId,
            pending: false,
            crmHash: write.hash,
            erpModifiedAt: write.erpModifiedAt,
            ...(previous?.crmModifiedOn && { crmModifiedOn: previous.crmModifiedOn }),
          };
          couplingUpdates.push(coupling);
          byErp.set(write.erpId, coupling);
          byCrm.set(write.crmId.toLowerCase(), coupling);
          writtenThisRun.add(write.crmId.toLowerCase());
          if (write.create) counts.inserted++;
          else counts.modified++;
        }
        for (const { erpId, erpModifiedAt } of plan.unchanged) {
          const coupling = byErp.get(erpId);
          if (coupling) couplingUpdates.push({ ...coupling, erpModifiedAt });
        }
        await this.init.couplings.save(company, name, couplingUpdates);
        if (plan.deletions.length > 0) {
          await this.init.couplings.remove(company, name, plan.deletions);
          for (const erpId of plan.deletions) {
            const coupling = byErp.get(erpId);
            byErp.delete(erpId);
            if (coupling) byCrm.delete(coupling.crmId.toLowerCase());
          }
        }
        counts.unchanged += plan.unchanged.length;
        counts.deleted += plan.deletions.length;
        counts.skipped += plan.skipped.length;
        counts.failed += plan.failed.length + results.failed.length;
        errors.push(...plan.failed, ...results.failed);
        await saveMapping({ erpWatermark: wave.at(-1)!.modifiedAt });
      }
      const log = this.logEntry(runId, name, "toCrm", started, counts, stoppedEarly);
      await this.init.logs.write(company, log, errors);
      logs.push(log);
    }

    // CRM -> ERP
    if (definition.direction !== "toCrm") {
      const counts = emptyCounts();
      const errors: SyncErrorEntry[] = [];
      if (crmRows.length > 0 && !stoppedEarly) {
        const erpAll = await this.init.erpRecords.changedSince(company, definition.erpTable, undefined);
        const erpRecords = new Map<string, ErpChange>(erpAll.map((record) => [record.id, record]));
        const erpChanged = new Map(erpChanges.filter((change) => change.modifiedBy === "erp").map((change) => [change.id, change.modifiedAt]));
        const schema = erpSchemas[definition.erpTable];
        const validate = (fields: Record<string, unknown>) => {
          const parsed = schema.safeParse(Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined && value !== null)));
          return parsed.success
            ? ({ ok: true, fields: parsed.data as ErpFields } as const)
            : ({ ok: false, reason: parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ") } as const);
        };
        for (let start = 0; start < crmRows.length; start += this.init.config.SYNC_BATCH_SIZE) {
          if (outOfTime()) {
            stoppedEarly = true;
            break;
          }
          const rows = crmRows.slice(start, start + this.init.config.SYNC_BATCH_SIZE);
          const plan = planFromCrm({ mapping: definition, rows, couplingsByCrm: byCrm, erpRecords, lookups, erpChanged, writtenThisRun, includeUncoupled: full, validate });
          const { written, conflicts } = await this.init.erpRecords.writeFromSync(company, definition.erpTable, plan.writes.map((write) => ({ fields: write.fields, ...(write.etag && { etag: write.etag }) })));
          const writtenIds = new Set(written.map((record) => record.id));
          const couplingUpdates: Coupling[] = [];
          for (const write of plan.writes) {
            if (!writtenIds.has(write.erpId)) continue;
            const previous = byCrm.get(write.crmId.toLowerCase());
            const record = written.find((candidate) => candidate.id === write.erpId)!;
            const coupling: Coupling = {
              ...(previous ?? { pending: false }),
              erpId: write.erpId,
              crmId: write.crmId,
              pending: false,
              erpHash: write.hash,
              crmModifiedOn: write.crmModifiedOn,
              erpModifiedAt: record.modifiedAt,
            };
            couplingUpdates.push(coupling);
            byCrm.set(write.crmId.toLowerCase(), coupling);
            byErp.set(write.erpId, coupling);
            erpRecords.set(write.erpId, { ...record, etag: "" });
            if (write.create) counts.inserted++;
            else counts.modified++;
          }
          for (const { crmId, crmModifiedOn } of plan.unchanged) {
            const coupling = byCrm.get(crmId.toLowerCase());
            if (coupling) couplingUpdates.push({ ...coupling, crmModifiedOn });
          }
          await this.init.couplings.save(company, name, couplingUpdates);
          const lost: Failure[] = conflicts.map((erpId) => ({
            sourceId: plan.writes.find((write) => write.erpId === erpId)?.crmId ?? erpId,
            destinationId: erpId,
            reason: syncMessages.erpNewer(definition.erpTable, definition.crmEntitySet),
          }));
          counts.unchanged += plan.unchanged.length;
          counts.skipped += plan.skipped.length;
          counts.failed += plan.failed.length + lost.length;
          errors.push(...plan.failed, ...lost);
          await saveMapping({ crmWatermark: String(rows.at(-1)!.modifiedon) });
        }
      }
      const log = this.logEntry(runId, name, "fromCrm", crmStarted, counts, stoppedEarly);
      await this.init.logs.write(company, log, errors);
      logs.push(log);
    }

    const summary = logs.map((log) => `${log.direction === "toCrm" ? "to CRM" : "from CRM"}: ${describeCounts(log)}`).join("; ");
    await saveMapping({ lastSyncAt: this.clock().toISOString(), lastSyncResult: summary });
    return { mapping: name, runId, logs, stoppedEarly };
  }

  /**
   * Creates go out as UpsertMultiple with the ids chosen up front (recorded first as pending couplings),
   * updates as UpdateMultiple; chunks run in parallel. A chunk Dataverse refuses is retried row by row to
   * find the failing rows; throttling and outages propagate (the run fails and is retried later).
   */
  private async applyToCrm(company: string, definition: MappingDefinition, client: DataverseClient, writes: CrmWrite[], byErp: Map<string, Coupling>) {
    const pending = writes.filter((write) => write.create && !byErp.get(write.erpId)?.pending);
    if (pending.length > 0) {
      await this.init.couplings.save(
        company,
        definition.name,
        pending.map((write) => ({ erpId: write.erpId, crmId: write.crmId, pending: true })),
      );
      for (const write of pending) byErp.set(write.erpId, { erpId: write.erpId, crmId: write.crmId, pending: true });
    }
    const size = this.init.config.SYNC_BATCH_SIZE;
    const chunks: { create: boolean; writes: CrmWrite[] }[] = [];
    for (const create of [true, false]) {
      const selected = writes.filter((write) => write.create === create);
      for (let start = 0; start < selected.length; start += size) chunks.push({ create, writes: selected.slice(start, start + size) });
    }
    const succeeded: CrmWrite[] = [];
    const failed: Failure[] = [];
    await Promise.all(
      chunks.map(async (chunk) => {
        try {
          if (chunk.create) await client.upsertMultiple(definition.crmEntitySet, chunk.writes.map((write) => write.row));
          else await client.updateMultiple(definition.crmEntitySet, chunk.writes.map((write) => write.row));
          succeeded.push(...chunk.writes);
        } catch (error) {
          if (!isRowError(error)) throw error;
          for (const write of chunk.writes) {
            try {
              const { [definition.crmKey]: _key, ...values } = write.row;
              if (write.create) await client.upsert(definition.crmEntitySet, write.crmId, values);
              else await client.update(definition.crmEntitySet, write.crmId, values);
              succeeded.push(write);
            } catch (single) {
              if (!isRowError(single)) throw single;
              const reason = single instanceof DataverseRequestError && single.status === 404 ? syncMessages.coupledToDeletedCrm(definition.crmEntitySet) : (single as Error).message;
              failed.push({ sourceId: write.erpId, destinationId: write.crmId, reason });
            }
          }
        }
      }),
    );
    return { succeeded, failed };
  }

  private async loadLookups(company: string, definition: MappingDefinition): Promise<Lookups> {
    const names = [...new Set(definition.fields.flatMap((field) => (field.lookup ? [field.lookup.mapping] : [])))];
    const lookups: Lookups = {};
    await Promise.all(
      names.map(async (mapping) => {
        const couplings = await this.init.couplings.load(company, mapping);
        lookups[mapping] = {
          toCrm: new Map(couplings.filter((coupling) => !coupling.pending).map((coupling) => [coupling.erpId, coupling.crmId])),
          toErp: new Map(couplings.filter((coupling) => !coupling.pending).map((coupling) => [coupling.crmId.toLowerCase(), coupling.erpId])),
        };
      }),
    );
    return lookups;
  }

  private logEntry(runId: string, mapping: string, direction: "toCrm" | "fromCrm", started: Date, counts: SyncCounts, stoppedEarly: boolean): SyncLogEntry {
    const finished = this.clock();
    return {
      id: SyncLogRepository.newLogId(started, runId, direction),
      runId,
      mapping,
      direction,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      ...counts,
      message: stoppedEarly
        ? "The run stopped at its time budget; the next run continues where it stopped."
        : counts.failed > 0
          ? `${counts.failed} record(s) failed; see the errors of this run.`
          : "Completed.",
    };
  }
}

/** Errors that belong to rows (bad data, a deleted row) rather than to the service. */
function isRowError(error: unknown): boolean {
  return error instanceof DataverseRequestError && error.status >= 400 && error.status < 500 && error.status !== 401 && error.status !== 403 && error.status !== 429;
}

export function describeCounts(counts: SyncCounts): string {
  return `${counts.inserted} inserted, ${counts.modified} modified, ${counts.deleted} deleted, ${counts.unchanged} unchanged, ${counts.skipped} skipped, ${counts.failed} failed`;
}
