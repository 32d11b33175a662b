import { randomUUID } from "node:crypto";
import type { Coupling } from "../model/coupling";
import { bucketRangeFilter, bucketedPartition, deleteWhere, submitTransactions } from "./partition-buckets";
import type { TableStorage } from "./table-storage";

const tableName = "couplings";

/** One wave's chosen CRM ids, written in one row before its creates (see savePending). */
export interface PendingManifest {
  rowKeys: string[];
}

/** Entries per manifest row: 2,000 entries of a 20-character ERP id and a GUID are about 130,000 characters. */
const manifestEntriesPerRow = 6_000;
const charsPerProperty = 30_000;

/**
 * ERP id <-> CRM id per company and mapping, with what was last synchronized. One partition per mapping,
 * read whole at the start of a run (a few requests for thousands of couplings) and written in
 * entity-group transactions.
 *
 * The CRM ids a wave chooses for its creates are recorded before the creates, so a rerun after a crash upserts
 * the same rows instead of making duplicates. They are recorded as one manifest row per wave (in the partition
 * `<company>~<mapping>!pending`, outside the couplings' range) rather than a pending coupling per record: a
 * created record then costs one coupling write, not two. Readers see a manifest's entries as pending couplings
 * where no coupling row was written after it.
 */
export class CouplingRepository {
  constructor(private readonly tables: TableStorage) {}

  async load(company: string, mapping: string): Promise<Coupling[]> {
    const table = await this.tables.table(tableName);
    const [rows, manifests] = await Promise.all([
      (async () => {
        const couplings: { coupling: Coupling; writtenAt: number }[] = [];
        for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: bucketRangeFilter(baseOf(company, mapping)) } })) {
          couplings.push({ coupling: couplingOf(row), writtenAt: Date.parse(String(row.timestamp)) });
        }
        return couplings;
      })(),
      this.manifests(company, mapping),
    ]);
    if (manifests.length === 0) return rows.map((row) => row.coupling);
    const byErp = new Map(rows.map((row) => [row.coupling.erpId, row]));
    for (const manifest of manifests.sort((a, b) => a.writtenAt - b.writtenAt)) {
      for (const [erpId, crmId] of manifest.entries) {
        const row = byErp.get(erpId);
        // A coupling written after the manifest (the wave finished, or an admin coupled the record) is newer.
        if (row && (row.coupling.crmId.toLowerCase() === crmId || row.writtenAt >= manifest.writtenAt)) continue;
        byErp.set(erpId, { coupling: { erpId, crmId, pending: true }, writtenAt: manifest.writtenAt });
      }
    }
    return [...byErp.values()].map((row) => row.coupling);
  }

  /** Records the CRM ids chosen for a wave's creates, before the creates are sent. */
  async savePending(company: string, mapping: string, entries: Pick<Coupling, "erpId" | "crmId">[]): Promise<PendingManifest> {
    const partitionKey = manifestPartition(company, mapping);
    const stamp = new Date().toISOString();
    const rows: Record<string, unknown>[] = [];
    for (let start = 0; start < entries.length; start += manifestEntriesPerRow) {
      const text = JSON.stringify(entries.slice(start, start + manifestEntriesPerRow).map((entry) => [entry.erpId, entry.crmId.toLowerCase()]));
      const row: Record<string, unknown> = { partitionKey, rowKey: `${stamp}~${randomUUID()}`, parts: Math.ceil(text.length / charsPerProperty) };
      for (let part = 0; part * charsPerProperty < text.length; part++) row[`p${part}`] = text.slice(part * charsPerProperty, (part + 1) * charsPerProperty);
      rows.push(row);
    }
    if (rows.length > 0)
      await submitTransactions(
        await this.tables.table(tableName),
        rows.map((row) => ["create", row as never] as const),
      );
    return { rowKeys: rows.map((row) => String(row.rowKey)) };
  }

  /**
   * A wave is done: its manifest goes. Ids it holds whose record did not get its coupling are kept as pending
   * couplings first (a create whose follow-up update failed has made its row).
   */
  async settlePending(company: string, mapping: string, manifest: PendingManifest, unfinished: Pick<Coupling, "erpId" | "crmId">[]): Promise<void> {
    if (unfinished.length > 0)
      await this.save(
        company,
        mapping,
        unfinished.map((entry) => ({ ...entry, pending: true })),
      );
    await this.deleteManifests(company, mapping, manifest.rowKeys);
  }

  /**
   * Manifests a crashed run left behind become pending couplings, for a run (holding the mapping's lease) to
   * start from: one row per record, only after a crash.
   */
  async recoverPending(company: string, mapping: string): Promise<void> {
    const manifests = await this.manifests(company, mapping);
    if (manifests.length === 0) return;
    const pending = (await this.load(company, mapping)).filter((coupling) => coupling.pending);
    await this.save(company, mapping, pending);
    await this.deleteManifests(
      company,
      mapping,
      manifests.map((manifest) => manifest.rowKey),
    );
  }

  async save(company: string, mapping: string, couplings: Coupling[]): Promise<void> {
    const base = baseOf(company, mapping);
    await this.transact(
      couplings.map(
        (coupling) =>
          [
            "upsert",
            { partitionKey: bucketedPartition(base, coupling.erpId), rowKey: encodeURIComponent(coupling.erpId), ...withoutUndefined(coupling) },
            "Replace",
          ] as const,
      ),
    );
  }

  async remove(company: string, mapping: string, erpIds: string[]): Promise<void> {
    const base = baseOf(company, mapping);
    // A manifest a crashed run left must not bring back a coupling removed since (rare: only after a crash).
    await this.recoverPending(company, mapping);
    await this.transact(erpIds.map((erpId) => ["delete", { partitionKey: bucketedPartition(base, erpId), rowKey: encodeURIComponent(erpId) }] as const));
  }

  async removeCompany(company: string): Promise<void> {
    await deleteWhere(await this.tables.table(tableName), bucketRangeFilter(company));
  }

  private async transact(actions: Parameters<typeof submitTransactions>[1]): Promise<void> {
    if (actions.length > 0) await submitTransactions(await this.tables.table(tableName), actions);
  }

  private async manifests(company: string, mapping: string): Promise<{ rowKey: string; writtenAt: number; entries: [string, string][] }[]> {
    const table = await this.tables.table(tableName);
    const manifests: { rowKey: string; writtenAt: number; entries: [string, string][] }[] = [];
    const partition = manifestPartition(company, mapping).replace(/'/g, "''");
    for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: `PartitionKey eq '${partition}'` } })) {
      const text = Array.from({ length: Number(row.parts) }, (_, part) => String(row[`p${part}`] ?? "")).join("");
      manifests.push({ rowKey: String(row.rowKey), writtenAt: Date.parse(String(row.timestamp)), entries: JSON.parse(text) as [string, string][] });
    }
    return manifests;
  }

  private async deleteManifests(company: string, mapping: string, rowKeys: string[]): Promise<void> {
    const table = await this.tables.table(tableName);
    const partitionKey = manifestPartition(company, mapping);
    // One at a time and forgiving: another reader may have recovered (and deleted) the same manifest.
    for (const rowKey of rowKeys)
      await table.deleteEntity(partitionKey, rowKey).catch((error: { statusCode?: number }) => {
        if (error.statusCode !== 404) throw error;
      });
  }
}

function couplingOf(row: Record<string, unknown>): Coupling {
  return {
    erpId: decodeURIComponent(String(row.rowKey)),
    crmId: String(row.crmId),
    pending: row.pending === true,
    ...(typeof row.erpModifiedAt === "string" && { erpModifiedAt: row.erpModifiedAt }),
    ...(typeof row.crmModifiedOn === "string" && { crmModifiedOn: row.crmModifiedOn }),
    ...(typeof row.syncedJson === "string" && { synced: JSON.parse(row.syncedJson) as Coupling["synced"] }),
  };
}

/** Sorts before `<company>~<mapping>~`, so the couplings' range reads never see it (removeCompany's range does). */
function manifestPartition(company: string, mapping: string): string {
  return `${baseOf(company, mapping)}!pending`;
}

/** Couplings of one company and mapping live in the partitions `<company>~<mapping>~<bucket>`. */
function baseOf(company: string, mapping: string): string {
  return `${company}~${mapping}`;
}

/** Fails to compile when Coupling gains a field that withoutUndefined does not store. */
const everyFieldStored: Exclude<keyof Coupling, "erpId" | "crmId" | "pending" | "synced" | "erpModifiedAt" | "crmModifiedOn"> extends never ? true : never =
  true;
void everyFieldStored;

/** A coupling's columns, written field by field (no entries and spreads: a large run saves one per record). */
function withoutUndefined(coupling: Coupling): Record<string, unknown> {
  const columns: Record<string, unknown> = { crmId: coupling.crmId, pending: coupling.pending };
  if (coupling.erpModifiedAt !== undefined) columns.erpModifiedAt = coupling.erpModifiedAt;
  if (coupling.crmModifiedOn !== undefined) columns.crmModifiedOn = coupling.crmModifiedOn;
  if (coupling.synced) columns.syncedJson = JSON.stringify(coupling.synced);
  return columns;
}
