import type { ErpFields, ErpRecord } from "../model/erp-schemas";
import type { ErpTable } from "../model/erp-tables";
import { bucketRangeFilter, bucketedPartition } from "./partition-buckets";

/**
 * How ERP records are laid out in their table. A record's partition (`<company>~<table>~<bucket>`) holds two
 * kinds of row:
 * - the record row, keyed by the encoded id: what a point read or a full listing returns;
 * - change rows, keyed `!c!<stamp>!<encoded id>`, a copy of the record as that change left it, written in
 *   the same entity-group transaction as the record row. "What changed since X" is then a range read per
 *   bucket, whose cost follows the number of changes, not the size of the table.
 * Encoded ids never start with `!` (it is escaped), so the two kinds never mix in a range.
 */
export interface ErpRow {
  partitionKey: string;
  rowKey: string;
  etag?: string;
  fieldsJson: string;
  modifiedAt: string;
  modifiedBy: ErpRecord["modifiedBy"];
  deleted: boolean;
}

const changePrefix = "!c!";
/** Every encoded id starts at or after `%` (0x25); change rows sort before it. */
export const recordRowsFilter = "RowKey ge '%'";

/** Records of one company and table live in the partitions `<company>~<table>~<bucket>`. */
export function partitionOf(company: string, table: ErpTable, id: string): string {
  return bucketedPartition(`${company}~${table}`, id);
}

/** Row keys may not contain / \ # ? or control characters; ERP codes may. */
export function encodeId(id: string): string {
  return encodeURIComponent(id).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function changeRowKey(stamp: string, id: string): string {
  return `${changePrefix}${stamp}!${encodeId(id)}`;
}

/** The record rows of a company's table, optionally only those changed after a stamp (a scan: for listings). */
export function recordRowsOf(company: string, table: ErpTable, since?: string): string {
  const rows = `${bucketRangeFilter(`${company}~${table}`)} and ${recordRowsFilter}`;
  return since ? `${rows} and modifiedAt gt '${escape(since)}'` : rows;
}

/**
 * The change rows of one partition after a stamp: `!c!<since>~` sorts after every key of that stamp (`!` < `~`)
 * and before every key of a later one.
 */
export function changeRowsOf(partitionKey: string, since: string): string {
  return `PartitionKey eq '${escape(partitionKey)}' and RowKey ge '${escape(`${changePrefix}${since}~`)}' and RowKey lt '!d'`;
}

/** The change rows of one partition after a stamp, or all of them without one. */
export function changeRowsAfter(partitionKey: string, since: string | undefined): string {
  return since === undefined
    ? `PartitionKey eq '${escape(partitionKey)}' and RowKey ge '${changePrefix}' and RowKey lt '!d'`
    : changeRowsOf(partitionKey, since);
}

export function toRow(company: string, table: ErpTable, record: ErpRecord): ErpRow {
  return {
    partitionKey: partitionOf(company, table, record.id),
    rowKey: encodeId(record.id),
    fieldsJson: JSON.stringify(record.fields),
    modifiedAt: record.modifiedAt,
    modifiedBy: record.modifiedBy,
    deleted: record.deleted,
  };
}

export function toChangeRow(company: string, table: ErpTable, record: ErpRecord): ErpRow {
  return { ...toRow(company, table, record), rowKey: changeRowKey(record.modifiedAt, record.id) };
}

export function fromRow(row: ErpRow): ErpRecord & { etag: string } {
  return { ...recordOf(row), etag: String(row.etag) };
}

/** The record a row holds (a record row or a change row, as stored or as the feed keeps it). */
export function recordOf(row: Pick<ErpRow, "fieldsJson" | "modifiedAt" | "modifiedBy" | "deleted">): ErpRecord {
  const fields = JSON.parse(row.fieldsJson) as ErpFields;
  return { id: fields.id, fields, modifiedAt: row.modifiedAt, modifiedBy: row.modifiedBy, deleted: row.deleted };
}

function escape(value: string): string {
  return value.replace(/'/g, "''");
}

/** A change row as the feed holds it until its turn: what the record needs, without the keys and ETag. */
export type FeedRow = Pick<ErpRow, "fieldsJson" | "modifiedAt" | "modifiedBy" | "deleted"> & { committed: string };

export async function* feedPages(pages: AsyncIterable<(ErpRow & { timestamp?: string })[]>): AsyncGenerator<FeedRow[]> {
  for await (const page of pages) {
    const rows = page.map((row) => ({
      fieldsJson: row.fieldsJson,
      modifiedAt: row.modifiedAt,
      modifiedBy: row.modifiedBy,
      deleted: row.deleted,
      committed: String(row.timestamp ?? ""),
    }));
    // The SDK's page generator keeps its last page until it reads the next (it needs the continuation token):
    // emptied, that page holds no entities meanwhile.
    page.length = 0;
    yield rows;
  }
}

/** Whether `a` committed after `b` (by the server's commit time, at its full precision, then by stamp). */
export function laterCommit(a: { record: ErpRecord; committed: string }, b: { record: ErpRecord; committed: string }): boolean {
  const at = commitTime(a.committed);
  const bt = commitTime(b.committed);
  if (at !== bt) return at > bt;
  return a.record.modifiedAt > b.record.modifiedAt;
}

/** `2026-11-26T15:55:04.1234567Z` with the fraction padded to 7 digits, so two times compare as text. */
function commitTime(timestamp: string): string {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(timestamp);
  return match ? `${match[1]}.${(match[2] ?? "").padEnd(7, "0")}Z` : timestamp;
}
