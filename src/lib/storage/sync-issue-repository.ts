import type { SyncIssue } from "../model/sync-issue";
import { issueKey } from "../model/sync-issue";
import { deleteRows, deleteWhere, submitTransactions } from "./partition-buckets";
import { type TableStorage, getRow } from "./table-storage";

const tableName = "syncissues";

/**
 * Records that did not synchronize (deferred, failed, in conflict, skipped), per company and mapping: the
 * retry list of the next run, BC's "Synchronization skipped records" and the open conflicts. One partition
 * per company and mapping; a record's row goes away when it synchronizes.
 */
export class SyncIssueRepository {
  constructor(private readonly tables: TableStorage) {}

  async list(company: string, mapping?: string): Promise<SyncIssue[]> {
    const table = await this.tables.table(tableName);
    const filter = mapping
      ? `PartitionKey eq '${partitionOf(company, mapping).replace(/'/g, "''")}'`
      : `PartitionKey ge '${`${company}~`.replace(/'/g, "''")}' and PartitionKey lt '${`${company}~~`.replace(/'/g, "''")}'`;
    const issues: SyncIssue[] = [];
    for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) issues.push(fromRow(row));
    return issues;
  }

  async get(company: string, mapping: string, side: SyncIssue["side"], sourceId: string): Promise<SyncIssue | undefined> {
    const row = await getRow<Record<string, unknown>>(await this.tables.table(tableName), partitionOf(company, mapping), rowKeyOf(side, sourceId));
    return row && fromRow(row);
  }

  async save(company: string, mapping: string, issues: SyncIssue[]): Promise<void> {
    if (issues.length === 0) return;
    await submitTransactions(
      await this.tables.table(tableName),
      issues.map((issue) => ["upsert", toRow(company, mapping, issue), "Replace"] as const),
    );
  }

  /** Removes the rows of these records; a record with no row is already fine. */
  async remove(company: string, mapping: string, keys: { side: SyncIssue["side"]; sourceId: string }[]): Promise<void> {
    if (keys.length === 0) return;
    await deleteRows(
      await this.tables.table(tableName),
      keys.map((key) => ({ partitionKey: partitionOf(company, mapping), rowKey: rowKeyOf(key.side, key.sourceId) })),
    );
  }

  async removeCompany(company: string): Promise<void> {
    await deleteWhere(await this.tables.table(tableName), `PartitionKey ge '${company}~' and PartitionKey lt '${company}~~'`);
  }
}

function partitionOf(company: string, mapping: string): string {
  return `${company}~${mapping}`;
}

function rowKeyOf(side: SyncIssue["side"], sourceId: string): string {
  return `${side}~${encodeURIComponent(sourceId).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

function toRow(company: string, mapping: string, issue: SyncIssue): Record<string, unknown> & { partitionKey: string; rowKey: string } {
  const { conflicts, id: _id, company: _company, mapping: _mapping, ...rest } = issue;
  return {
    partitionKey: partitionOf(company, mapping),
    rowKey: rowKeyOf(issue.side, issue.sourceId),
    ...Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)),
    ...(conflicts && { conflictsJson: JSON.stringify(conflicts) }),
  };
}

function fromRow(row: Record<string, unknown>): SyncIssue {
  const [company = "", mapping = ""] = String(row.partitionKey).split("~");
  const side = String(row.side) as SyncIssue["side"];
  const sourceId = String(row.sourceId);
  return {
    id: issueKey(mapping, side, sourceId),
    company,
    mapping,
    side,
    sourceId,
    kind: row.kind as SyncIssue["kind"],
    attempts: Number(row.attempts ?? 0),
    reason: String(row.reason ?? ""),
    direction: row.direction as SyncIssue["direction"],
    firstAt: String(row.firstAt ?? ""),
    lastAt: String(row.lastAt ?? ""),
    ...(typeof row.erpId === "string" && { erpId: row.erpId }),
    ...(typeof row.crmId === "string" && { crmId: row.crmId }),
    ...(typeof row.runId === "string" && { runId: row.runId }),
    ...(typeof row.conflictsJson === "string" && { conflicts: JSON.parse(row.conflictsJson) as SyncIssue["conflicts"] }),
  };
}
