import type { TableTransaction } from "@azure/data-tables";
import type { ErpFields, ErpRecord } from "../erp/erp-schemas";
import type { ErpTable } from "../sync/default-mappings";
import { bucketRangeFilter, bucketedPartition, deleteWhere, submitTransactions, transactionsOf } from "./partition-buckets";
import { type TableStorage, getRow, storageStatus } from "./table-storage";

const tableName = "erprecords";

interface ErpRow {
  partitionKey: string;
  rowKey: string;
  etag?: string;
  fieldsJson: string;
  modifiedAt: string;
  modifiedBy: ErpRecord["modifiedBy"];
  deleted: boolean;
}

export interface VersionedErpRecord extends ErpRecord {
  etag: string;
}

export interface SyncWrite {
  fields: ErpFields;
  /** Only write if the record still has this ETag (it did not change since it was read); undefined: create. */
  etag?: string;
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

/** ERP records per company and table; one partition each, written in entity-group transactions. */
export class ErpRecordRepository {
  constructor(
    private readonly tables: TableStorage,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Upserts records (all or nothing per 100) and returns them as stored. */
  async upsert(company: string, table: ErpTable, records: ErpFields[], by: ErpRecord["modifiedBy"] = "erp"): Promise<ErpRecord[]> {
    const client = await this.tables.table(tableName);
    const now = this.clock();
    const stored = records.map((fields): ErpRecord => ({ id: fields.id, fields, modifiedAt: changeStamp(now), modifiedBy: by, deleted: false }));
    await submitTransactions(
      client,
      stored.map((record) => ["upsert", toRow(company, table, record), "Replace"] as const),
    );
    return stored;
  }

  /**
   * Writes from the sync (CRM -> ERP): each only if the record did not change since it was read.
   * Returns the ids whose write lost to a newer ERP change.
   */
  async writeFromSync(company: string, table: ErpTable, writes: SyncWrite[]): Promise<{ written: ErpRecord[]; conflicts: string[] }> {
    const client = await this.tables.table(tableName);
    const now = this.clock();
    const written: ErpRecord[] = [];
    const conflicts: string[] = [];
    const prepared = writes.map((write) => ({
      write,
      record: { id: write.fields.id, fields: write.fields, modifiedAt: changeStamp(now), modifiedBy: "crm-sync", deleted: false } satisfies ErpRecord,
    }));
    const byPartition = transactionsOf(prepared.map((item) => ["write", toRow(company, table, item.record), item] as const));
    for (const group of byPartition) {
      const chunk = group.map(([, , item]) => item);
      const actions = chunk.map(({ write, record }) =>
        write.etag
          ? (["update", toRow(company, table, record), "Replace", { etag: write.etag }] as const)
          : (["create", toRow(company, table, record)] as const),
      );
      try {
        await client.submitTransaction(actions as unknown as TableTransaction["actions"]);
        written.push(...chunk.map(({ record }) => record));
      } catch (error) {
        const status = storageStatus(error);
        if (status !== 412 && status !== 409 && status !== 404) throw error;
        // One write lost a race: write the chunk one by one to find which.
        for (const [index, { record }] of chunk.entries()) {
          try {
            const action = actions[index]!;
            if (action[0] === "update") await client.updateEntity(action[1], "Replace", { etag: action[3]!.etag });
            else await client.createEntity(action[1]);
            written.push(record);
          } catch (single) {
            const singleStatus = storageStatus(single);
            if (singleStatus === 412 || singleStatus === 409 || singleStatus === 404) conflicts.push(record.id);
            else throw single;
          }
        }
      }
    }
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
    const record: ErpRecord = { ...existing, modifiedAt: changeStamp(this.clock()), modifiedBy: "erp", deleted: true };
    await client.updateEntity(toRow(company, table, record), "Replace", { etag: existing.etag });
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
      .listEntities<ErpRow>({ queryOptions: { filter: filterOf(company, table, options.since) } })
      .byPage({ maxPageSize: options.top, ...(options.continuationToken && { continuationToken: options.continuationToken }) });
    const next = await pages.next();
    if (next.done) return { records: [] };
    const { continuationToken } = next.value as { continuationToken?: string };
    return { records: next.value.map(fromRow), ...(continuationToken && { continuationToken }) };
  }

  /** Every record changed after `since` (deleted ones included), oldest change first. */
  async changedSince(company: string, table: ErpTable, since?: string): Promise<VersionedErpRecord[]> {
    const client = await this.tables.table(tableName);
    const records: VersionedErpRecord[] = [];
    for await (const row of client.listEntities<ErpRow>({ queryOptions: { filter: filterOf(company, table, since) } })) records.push(fromRow(row));
    return records.sort((a, b) => (a.modifiedAt < b.modifiedAt ? -1 : a.modifiedAt > b.modifiedAt ? 1 : 0));
  }

  async removeCompany(company: string): Promise<void> {
    await deleteWhere(await this.tables.table(tableName), bucketRangeFilter(company));
  }
}

/** Records of one company and table live in the partitions `<company>~<table>~<bucket>`. */
function partitionOf(company: string, table: ErpTable, id: string): string {
  return bucketedPartition(`${company}~${table}`, id);
}

/** Row keys may not contain / \ # ? or control characters; ERP codes may. */
function encodeId(id: string): string {
  return encodeURIComponent(id).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

function filterOf(company: string, table: ErpTable, since: string | undefined): string {
  const partitions = bucketRangeFilter(`${company}~${table}`);
  return since ? `${partitions} and modifiedAt gt '${since.replace(/'/g, "''")}'` : partitions;
}

function toRow(company: string, table: ErpTable, record: ErpRecord): ErpRow {
  return {
    partitionKey: partitionOf(company, table, record.id),
    rowKey: encodeId(record.id),
    fieldsJson: JSON.stringify(record.fields),
    modifiedAt: record.modifiedAt,
    modifiedBy: record.modifiedBy,
    deleted: record.deleted,
  };
}

function fromRow(row: ErpRow): VersionedErpRecord {
  const fields = JSON.parse(row.fieldsJson) as ErpFields;
  return { id: fields.id, fields, modifiedAt: row.modifiedAt, modifiedBy: row.modifiedBy, deleted: row.deleted, etag: String(row.etag) };
}
