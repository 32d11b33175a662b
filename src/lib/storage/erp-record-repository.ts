import { mapLimit, pointReadParallelism } from "../map-limit";
import type { TableClient } from "@azure/data-tables";
import type { ErpFields, ErpRecord } from "../model/erp-schemas";
import type { ErpTable } from "../model/erp-tables";
import {
  type ErpRow,
  changeRowKey,
  changeRowsAfter,
  changeRowsOf,
  encodeId,
  feedPages,
  fromRow,
  partitionOf,
  recordOf,
  recordRowsOf,
  toChangeRow,
  toRow,
  laterCommit,
} from "./erp-record-rows";
import { bucketPartitions, bucketRangeFilter, deleteRows, deleteWhere, transactionsOf } from "./partition-buckets";
import { type TableStorage, getRow, storageStatus } from "./table-storage";
import { mergeSortedPages } from "./merged-pages";
import { type BatchAction, submitBatch } from "./entity-batch";

const tableName = "erprecords";

export interface VersionedErpRecord extends ErpRecord {
  /** The record row's ETag; absent when the record was read from the change rows. */
  etag?: string;
}

/** A change read from the change feed, with the server's commit time of its row. */
export type ErpChange = { record: VersionedErpRecord; committed: string };

export interface SyncWrite {
  fields: ErpFields;
  /** The record as the sync read it: written only if it has not changed since. Undefined: a create. */
  basedOn?: { modifiedAt: string; etag?: string };
}

let sequence = 0;

/**
 * A change stamp: ISO time plus a per-process sequence, so records written in the same millisecond still
 * order, and `modifiedAt > watermark` never skips one.
 */
export function changeStamp(now: Date): string {
  sequence = (sequence + 1) % 1_000_000;
  return `${now.toISOString()}-${String(sequence).padStart(6, "0")}`;
}

type Action = BatchAction;

/**
 * ERP records per company and table, in bucketed partitions (erp-record-rows.ts has the layout). Every write
 * puts the record row and its change row in one transaction, so the changes feed never misses a write.
 */
export class ErpRecordRepository {
  constructor(
    private readonly tables: TableStorage,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Upserts records (all or nothing per transaction) and returns them as stored. */
  async upsert(company: string, table: ErpTable, records: ErpFields[], by: ErpRecord["modifiedBy"] = "erp"): Promise<ErpRecord[]> {
    const client = await this.tables.table(tableName);
    const now = this.clock();
    const stored = records.map((fields): ErpRecord => ({ id: fields.id, fields, modifiedAt: changeStamp(now), modifiedBy: by, deleted: false }));
    const groups = stored.map((record) => [
      ["upsert", toRow(company, table, record), "Replace"] as const,
      ["upsert", toChangeRow(company, table, record), "Replace"] as const,
    ]);
    await Promise.all(transactionsOf(groups).map((actions) => submit(client, actions)));
    return stored;
  }

  /**
   * Writes from the sync (CRM -> ERP): each only if the record did not change since it was read.
   * Returns the ids whose write lost to a newer ERP change (or met a record that exists already).
   */
  async writeFromSync(company: string, table: ErpTable, writes: SyncWrite[]): Promise<{ written: ErpRecord[]; conflicts: string[] }> {
    const client = await this.tables.table(tableName);
    const now = this.clock();
    const conflicts: string[] = [];
    // A record read from its change rows has no record-row ETag: read it, and go on only if it is as it was.
    const ready: { write: SyncWrite; etag?: string }[] = [];
    await mapLimit(writes, pointReadParallelism, async (write) => {
      if (!write.basedOn || write.basedOn.etag) return void ready.push({ write, ...(write.basedOn?.etag && { etag: write.basedOn.etag }) });
      const current = await getRow<ErpRow>(client, partitionOf(company, table, write.fields.id), encodeId(write.fields.id));
      if (!current || current.modifiedAt !== write.basedOn.modifiedAt) conflicts.push(write.fields.id);
      else ready.push({ write, etag: current.etag });
    });
    const items = ready.map(({ write, etag }) => {
      const record: ErpRecord = { id: write.fields.id, fields: write.fields, modifiedAt: changeStamp(now), modifiedBy: "crm-sync", deleted: false };
      const recordAction = etag
        ? (["update", toRow(company, table, record), "Replace", { etag }] as const)
        : (["create", toRow(company, table, record)] as const);
      return { write, record, actions: [recordAction, ["upsert", toChangeRow(company, table, record), "Replace"] as const] };
    });
    const written: ErpRecord[] = [];
    const byItem = new Map(items.map((item) => [item.actions, item]));
    for (const transaction of transactionsOf(items.map((item) => item.actions))) {
      const chunk = transaction.map((actions) => byItem.get(actions)!);
      try {
        await submit(client, transaction);
        written.push(...chunk.map((item) => item.record));
      } catch (error) {
        if (!isRace(error)) throw error;
        // One write lost a race: write the chunk record by record to find which.
        for (const item of chunk) {
          try {
            await submit(client, [item.actions]);
            written.push(item.record);
          } catch (single) {
            if (isRace(single)) conflicts.push(item.record.id);
            else throw single;
          }
        }
      }
    }
    // The change rows the writes replaced are never needed again.
    const basedOn = new Map(items.map((item) => [item.record.id, item.write.basedOn]));
    await this.forgetChanges(
      company,
      table,
      written.flatMap((record) => {
        const before = basedOn.get(record.id);
        return before ? [{ id: record.id, modifiedAt: before.modifiedAt }] : [];
      }),
    );
    return { written, conflicts };
  }

  async get(company: string, table: ErpTable, id: string): Promise<VersionedErpRecord | undefined> {
    const row = await getRow<ErpRow>(await this.tables.table(tableName), partitionOf(company, table, id), encodeId(id));
    return row && fromRow(row);
  }

  /** Marks a record deleted (a tombstone), so the deletion reaches the sync and readers of changes. */
  async delete(company: string, table: ErpTable, id: string): Promise<boolean> {
    const existing = await this.get(company, table, id);
    if (!existing || existing.deleted) return false;
    const client = await this.tables.table(tableName);
    const { etag, ...rest } = existing;
    const record: ErpRecord = { ...rest, modifiedAt: changeStamp(this.clock()), modifiedBy: "erp", deleted: true };
    await submit(client, [
      [["update", toRow(company, table, record), "Replace", { etag }] as const, ["upsert", toChangeRow(company, table, record), "Replace"] as const],
    ]);
    await this.forgetChanges(company, table, [existing]);
    return true;
  }

  /** One page of records changed after `since`, in id order, with a continuation token. */
  async page(
    company: string,
    table: ErpTable,
    options: { since?: string; top: number; continuationToken?: string },
  ): Promise<{ records: ErpRecord[]; continuationToken?: string }> {
    const client = await this.tables.table(tableName);
    const pages = client
      .listEntities<ErpRow>({ queryOptions: { filter: recordRowsOf(company, table, options.since) } })
      .byPage({ maxPageSize: options.top, ...(options.continuationToken && { continuationToken: options.continuationToken }) });
    const next = await pages.next();
    if (next.done) return { records: [] };
    const { continuationToken } = next.value as { continuationToken?: string };
    return { records: next.value.map(fromRow), ...(continuationToken && { continuationToken }) };
  }

  /**
   * Every record changed after `since` (deleted ones included), oldest change first. Without `since`, every
   * record (with its row's ETag); with it, a range read of the change rows per bucket, so a table with no
   * changes costs one read per bucket at any size.
   */
  async changedSince(company: string, table: ErpTable, since?: string): Promise<VersionedErpRecord[]> {
    const client = await this.tables.table(tableName);
    const records: VersionedErpRecord[] = [];
    if (since === undefined) {
      for await (const row of client.listEntities<ErpRow>({ queryOptions: { filter: recordRowsOf(company, table) } })) records.push(fromRow(row));
      return records.sort(byStamp);
    }
    // Per record, the change row committed last: two writers racing on one record may commit out of stamp order,
    // and the record row holds the last commit. A change row commits with its record row, so the server's
    // commit Timestamp of the change row says which state the record holds (the stamp breaks a tie).
    const latest = new Map<string, { record: VersionedErpRecord; committed: string }>();
    const superseded: ErpRecord[] = [];
    await Promise.all(
      bucketPartitions(`${company}~${table}`).map(async (partition) => {
        for await (const row of client.listEntities<ErpRow & { timestamp?: string }>({ queryOptions: { filter: changeRowsOf(partition, since) } })) {
          const { etag: _changeRowEtag, ...record } = fromRow(row);
          const entry = { record, committed: String(row.timestamp ?? "") };
          const seen = latest.get(record.id);
          if (seen && laterCommit(seen, entry)) superseded.push(record);
          else {
            if (seen) superseded.push(seen.record);
            latest.set(record.id, entry);
          }
        }
      }),
    );
    // Housekeeping: a change row with a later one for the same record is never needed again.
    await this.forgetChanges(company, table, superseded);
    return [...latest.values()].map((entry) => entry.record).sort(byStamp);
  }

  /**
   * The changes after `since` (all, without it), oldest stamp first, streamed: each bucket's change rows are read a
   * page at a time and merged, so a reader holds a few pages. A record changed more than once whose older change rows
   * are not yet forgotten comes once per change (`committed` tells which of two racing writes the row holds). No ETag.
   */
  async *changes(company: string, table: ErpTable, since?: string, pageSize = 500): AsyncGenerator<ErpChange> {
    const client = await this.tables.table(tableName);
    const sources = bucketPartitions(`${company}~${table}`).map((partition) =>
      feedPages(
        client.listEntities<ErpRow & { timestamp?: string }>({ queryOptions: { filter: changeRowsAfter(partition, since) } }).byPage({ maxPageSize: pageSize }),
      ),
    );
    for await (const row of mergeSortedPages(sources, (a, b) => a.modifiedAt < b.modifiedAt)) {
      yield { record: recordOf(row), committed: row.committed };
    }
  }

  /** Deletes change rows that later changes replaced (best effort: one already gone is fine). */
  async forgetChanges(company: string, table: ErpTable, changes: Pick<ErpRecord, "id" | "modifiedAt">[]): Promise<void> {
    if (changes.length === 0) return;
    await deleteRows(
      await this.tables.table(tableName),
      changes.map((change) => ({ partitionKey: partitionOf(company, table, change.id), rowKey: changeRowKey(change.modifiedAt, change.id) })),
    );
  }

  async removeCompany(company: string): Promise<void> {
    await deleteWhere(await this.tables.table(tableName), bucketRangeFilter(company));
  }
}

async function submit(client: TableClient, groups: readonly (readonly Action[])[]): Promise<void> {
  await submitBatch(client, groups.flat());
}

/** 412: the record changed since it was read; 409: a create met an existing record; 404: an update met none. */
function isRace(error: unknown): boolean {
  const status = storageStatus(error);
  return status === 412 || status === 409 || status === 404;
}

function byStamp(a: ErpRecord, b: ErpRecord): number {
  return a.modifiedAt < b.modifiedAt ? -1 : a.modifiedAt > b.modifiedAt ? 1 : 0;
}
