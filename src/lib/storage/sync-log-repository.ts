import type { SyncCounts } from "../model/sync-plan";
import { submitBatch } from "./entity-batch";
import { type TableStorage, getRow } from "./table-storage";

const logTable = "synclog";
const errorTable = "syncerrors";

export interface SyncLogEntry extends SyncCounts {
  id: string;
  runId: string;
  mapping: string;
  direction: "toCrm" | "fromCrm";
  startedAt: string;
  finishedAt?: string;
  message: string;
}

export interface SyncErrorEntry {
  sourceId: string;
  destinationId?: string;
  reason: string;
}

/** A job log row per run and direction (newest first) and an error row per failed record. */
export class SyncLogRepository {
  constructor(private readonly tables: TableStorage) {}

  /** Log ids sort newest first: an inverted time, then the run and direction. */
  static newLogId(startedAt: Date, runId: string, direction: string): string {
    return `${String(9_999_999_999_999 - startedAt.getTime()).padStart(13, "0")}-${runId}-${direction}`;
  }

  async write(company: string, entry: SyncLogEntry, errors: SyncErrorEntry[]): Promise<void> {
    const logs = await this.tables.table(logTable);
    const { id, ...fields } = entry;
    await logs.upsertEntity({ partitionKey: company, rowKey: id, ...fields }, "Replace");
    if (errors.length === 0) return;
    const table = await this.tables.table(errorTable);
    const partitionKey = `${company}~${id}`;
    const actions = errors
      .slice(0, 1000)
      .map((error, index) => ["upsert", { partitionKey, rowKey: String(index).padStart(6, "0"), ...error }, "Replace"] as const);
    for (let start = 0; start < actions.length; start += 100) {
      await submitBatch(table, actions.slice(start, start + 100));
    }
  }

  /**
   * One page of log rows, newest first, filtered in storage (mapping, direction, run, time range, failed only),
   * with the storage continuation token for the next page.
   */
  async page(
    company: string,
    options: {
      mapping?: string;
      direction?: string;
      runId?: string;
      from?: string;
      to?: string;
      failedOnly?: boolean;
      top: number;
      continuationToken?: string;
    },
  ): Promise<{ entries: SyncLogEntry[]; continuationToken?: string }> {
    const table = await this.tables.table(logTable);
    const quote = (value: string) => `'${value.replace(/'/g, "''")}'`;
    const filter = [
      `PartitionKey eq ${quote(company)}`,
      options.mapping && `mapping eq ${quote(options.mapping)}`,
      options.direction && `direction eq ${quote(options.direction)}`,
      options.runId && `runId eq ${quote(options.runId)}`,
      options.from && `startedAt ge ${quote(options.from)}`,
      options.to && `startedAt lt ${quote(options.to)}`,
      options.failedOnly && "failed gt 0",
    ]
      .filter(Boolean)
      .join(" and ");
    const pages = table
      .listEntities<Record<string, unknown>>({ queryOptions: { filter } })
      .byPage({ maxPageSize: options.top, ...(options.continuationToken && { continuationToken: options.continuationToken }) });
    const next = await pages.next();
    if (next.done) return { entries: [] };
    const entries = next.value.map((row) => {
      const { partitionKey: _p, rowKey, etag: _e, timestamp: _t, ...fields } = row;
      return { ...(fields as unknown as SyncLogEntry), id: String(rowKey) };
    });
    const { continuationToken } = next.value as { continuationToken?: string };
    return { entries, ...(continuationToken && { continuationToken }) };
  }

  async list(company: string, options: { mapping?: string; top: number }): Promise<SyncLogEntry[]> {
    const table = await this.tables.table(logTable);
    const filter = `PartitionKey eq '${company}'${options.mapping ? ` and mapping eq '${options.mapping.replace(/'/g, "''")}'` : ""}`;
    const entries: SyncLogEntry[] = [];
    for await (const page of table.listEntities<Record<string, unknown>>({ queryOptions: { filter } }).byPage({ maxPageSize: options.top })) {
      for (const row of page) {
        const { partitionKey: _p, rowKey, etag: _e, timestamp: _t, ...fields } = row;
        entries.push({ ...(fields as unknown as SyncLogEntry), id: String(rowKey) });
      }
      if (entries.length >= options.top) break;
    }
    return entries.slice(0, options.top);
  }

  async exists(company: string, logId: string): Promise<boolean> {
    return (await getRow(await this.tables.table(logTable), company, logId)) !== undefined;
  }

  /** One page of a run's error rows, in the order the run wrote them. */
  async errors(
    company: string,
    logId: string,
    options: { top: number; continuationToken?: string } = { top: 1000 },
  ): Promise<{ errors: SyncErrorEntry[]; continuationToken?: string }> {
    const table = await this.tables.table(errorTable);
    const pages = table
      .listEntities<SyncErrorEntry>({ queryOptions: { filter: `PartitionKey eq '${`${company}~${logId}`.replace(/'/g, "''")}'` } })
      .byPage({ maxPageSize: options.top, ...(options.continuationToken && { continuationToken: options.continuationToken }) });
    const next = await pages.next();
    if (next.done) return { errors: [] };
    const errors = next.value.map((row) => ({ sourceId: row.sourceId, ...(row.destinationId && { destinationId: row.destinationId }), reason: row.reason }));
    const { continuationToken } = next.value as { continuationToken?: string };
    return { errors, ...(continuationToken && { continuationToken }) };
  }
}
