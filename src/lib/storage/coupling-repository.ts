// Over 250 lines: the couplings, their wave manifests and the reads by key share one table and its partition layout
// (the CRM id index is coupling-index.ts, the row columns coupling-rows.ts).
import { randomUUID } from "node:crypto";
import { mapLimit, pointReadParallelism } from "../map-limit";
import type { Coupling } from "../model/coupling";
import { bucketCount, bucketRangeFilter, bucketedPartition, deleteRows, deleteWhere, rowsByKeys, submitTransactions } from "./partition-buckets";
import type { BatchAction } from "./entity-batch";
import { type TableStorage, getRow, storageStatus, unlessStatus } from "./table-storage";
import { type CouplingRow, baseOf, couplingOf, withoutUndefined } from "./coupling-rows";
import { CouplingIndex } from "./coupling-index";
import { type Manifest, manifestColumns, manifestEntries, manifestEntriesPerRow, manifestPartition, pendingEntries } from "./coupling-manifest";

const tableName = "couplings";

/** One wave's chosen CRM ids, written in one row before its creates (see savePending). */
export interface PendingManifest {
  rowKeys: string[];
}

/**
 * ERP id <-> CRM id per company and mapping, with what was last synchronized, in bucketed partitions per
 * mapping written in entity-group transactions. A run with changes reads its mapping whole (a few requests for
 * thousands of couplings); an admin's request reads by key: by ERP id (a point read) or by CRM id (through the
 * CRM id index, coupling-index.ts), or a page in ERP id order.
 *
 * The CRM ids a wave chooses for its creates are recorded before the creates, so a rerun after a crash upserts
 * the same rows instead of making duplicates. They are recorded as one manifest row per wave (in the partition
 * `<company>~<mapping>!pending`, outside the couplings' range) rather than a pending coupling per record: a
 * created record then costs one coupling write, not two. Readers see a manifest's entries as pending couplings
 * where no coupling row was written after it.
 */
export class CouplingRepository {
  private readonly index: CouplingIndex;

  constructor(private readonly tables: TableStorage) {
    this.index = new CouplingIndex(tables, tableName);
  }

  async load(company: string, mapping: string): Promise<Coupling[]> {
    const table = await this.tables.table(tableName);
    // Manifests first: a wave saves its couplings before it deletes its manifest, so a record being created is
    // always in one of the two reads.
    const manifests = await this.manifests(company, mapping);
    const byErp = new Map<string, { coupling: Coupling; writtenAt: number }>();
    for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: bucketRangeFilter(baseOf(company, mapping)) } })) {
      const coupling = couplingOf(row);
      byErp.set(coupling.erpId, { coupling, writtenAt: Date.parse(String(row.timestamp)) });
    }
    for (const [erpId, entry] of pendingEntries(manifests)) {
      const row = byErp.get(erpId);
      // A coupling written after the manifest (the wave finished, or an admin coupled the record) is newer.
      if (row && (row.coupling.crmId.toLowerCase() === entry.crmId || row.writtenAt >= entry.writtenAt)) continue;
      byErp.set(erpId, { coupling: { erpId, crmId: entry.crmId, pending: true }, writtenAt: entry.writtenAt });
    }
    return [...byErp.values()].map((row) => row.coupling);
  }

  /**
   * The couplings of these CRM rows, by CRM id (lower case): each found through the CRM id index and checked
   * against the coupling row it names, so an index row a later write made stale (uncoupled, coupled elsewhere)
   * finds nothing. Reads follow the number of ids asked for, not the number of couplings. A record a wave's
   * manifest names is found as pending. Complete once the mapping's index is (see indexAll).
   */
  async byCrmIds(company: string, mapping: string, crmIds: string[]): Promise<Map<string, Coupling>> {
    const found = new Map<string, Coupling>();
    const ids = [...new Set(crmIds.map((id) => id.toLowerCase()))];
    const named = await this.index.erpIdsOf(company, mapping, ids);
    const couplings = await this.byErpIds(company, mapping, [...named.values()]);
    for (const [crmId, erpId] of named) {
      const coupling = couplings.get(erpId);
      if (coupling && coupling.crmId.toLowerCase() === crmId) found.set(crmId, coupling);
    }
    for (const [erpId, entry] of pendingEntries(await this.manifests(company, mapping))) {
      if (ids.includes(entry.crmId) && !found.has(entry.crmId)) found.set(entry.crmId, { erpId, crmId: entry.crmId, pending: true });
    }
    return found;
  }

  /** The couplings of these ERP records (queries of a few row keys each), and the pending ones a wave's manifest names. */
  async byErpIds(company: string, mapping: string, erpIds: string[]): Promise<Map<string, Coupling>> {
    const found = new Map<string, Coupling>();
    const ids = [...new Set(erpIds)];
    const base = baseOf(company, mapping);
    const rows = await rowsByKeys(
      await this.tables.table(tableName),
      ids.map((erpId) => ({ partitionKey: bucketedPartition(base, erpId), rowKey: encodeURIComponent(erpId) })),
    );
    for (const row of rows) {
      const coupling = couplingOf(row);
      found.set(coupling.erpId, coupling);
    }
    const wanted = new Set(ids);
    for (const [erpId, entry] of pendingEntries(await this.manifests(company, mapping))) {
      const known = found.get(erpId);
      if (wanted.has(erpId) && (!known || known.crmId.toLowerCase() !== entry.crmId)) found.set(erpId, known ?? { erpId, crmId: entry.crmId, pending: true });
    }
    return found;
  }

  /**
   * The next `top` couplings of a mapping after an ERP id, in ERP id order (of their row keys): one query per
   * bucket for at most `top` rows each, merged. A list pages through a mapping without ever holding all of it.
   */
  async pageAfter(company: string, mapping: string, afterErpId: string | undefined, top: number): Promise<Coupling[]> {
    const table = await this.tables.table(tableName);
    const base = baseOf(company, mapping);
    const after = afterErpId === undefined ? undefined : encodeURIComponent(afterErpId).replace(/'/g, "''");
    const rows: Record<string, unknown>[] = [];
    await mapLimit(
      Array.from({ length: bucketCount }, (_, bucket) => `${base}~${bucket.toString(16).padStart(2, "0")}`),
      pointReadParallelism,
      async (partition) => {
        const filter = `PartitionKey eq '${partition.replace(/'/g, "''")}'${after === undefined ? "" : ` and RowKey gt '${after}'`}`;
        const first = await table.listEntities<Record<string, unknown>>({ queryOptions: { filter } }).byPage({ maxPageSize: top }).next();
        if (!first.done && first.value) rows.push(...first.value.slice(0, top));
      },
    );
    return rows
      .sort((a, b) => (String(a.rowKey) < String(b.rowKey) ? -1 : String(a.rowKey) > String(b.rowKey) ? 1 : 0))
      .slice(0, top)
      .map(couplingOf);
  }

  /**
   * Writes the CRM id index rows of these couplings (all of a mapping's, once, for couplings written before
   * the index existed); grouped by index partition into entity-group transactions.
   */
  indexAll(company: string, mapping: string, couplings: Pick<Coupling, "erpId" | "crmId">[]): Promise<void> {
    return this.index.write(company, mapping, couplings);
  }

  /** One record's coupling row (a point read; a record only a manifest names has none yet). */
  async get(company: string, mapping: string, erpId: string): Promise<Coupling | undefined> {
    const row = await getRow<Record<string, unknown>>(
      await this.tables.table(tableName),
      bucketedPartition(baseOf(company, mapping), erpId),
      encodeURIComponent(erpId),
    );
    return row && couplingOf(row);
  }

  /** Records the CRM ids chosen for a wave's creates, before the creates are sent. */
  async savePending(company: string, mapping: string, entries: Pick<Coupling, "erpId" | "crmId">[]): Promise<PendingManifest> {
    const partitionKey = manifestPartition(company, mapping);
    const stamp = new Date().toISOString();
    const rows: Record<string, unknown>[] = [];
    for (let start = 0; start < entries.length; start += manifestEntriesPerRow) {
      const chunk = entries.slice(start, start + manifestEntriesPerRow).map((entry): [string, string] => [entry.erpId, entry.crmId.toLowerCase()]);
      rows.push({ partitionKey, rowKey: `${stamp}~${randomUUID()}`, ...manifestColumns(chunk) });
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
   * Manifests a crashed run left behind become pending couplings, for a run (holding the mapping's lease, so no
   * wave of its own is in flight) to start from: one row per record, only after a crash. A coupling written
   * since the manifest is kept as it is.
   */
  async recoverPending(company: string, mapping: string): Promise<void> {
    const manifests = await this.manifests(company, mapping);
    if (manifests.length === 0) return;
    const table = await this.tables.table(tableName);
    const base = baseOf(company, mapping);
    await mapLimit([...pendingEntries(manifests)], pointReadParallelism, async ([erpId, entry]) => {
      const key = { partitionKey: bucketedPartition(base, erpId), rowKey: encodeURIComponent(erpId) };
      const pending = { ...key, crmId: entry.crmId, pending: true };
      await this.index.write(company, mapping, [{ erpId, crmId: entry.crmId }]);
      const row = await getRow<Record<string, unknown>>(table, key.partitionKey, key.rowKey);
      if (!row) return void (await table.createEntity(pending).catch(unlessStatus(409)));
      if (String(row.crmId).toLowerCase() === entry.crmId || Date.parse(String(row.timestamp)) >= entry.writtenAt) return;
      await table.updateEntity(pending, "Replace", { etag: row.etag }).catch(unlessStatus(412));
    });
    await this.deleteManifests(
      company,
      mapping,
      manifests.map((manifest) => manifest.rowKey),
    );
  }

  /**
   * Writes couplings over whatever their rows hold. `row` says what the writer knows of each row: a create where it
   * found none and an update where it read one cost storage one lookup each, an upsert two (Azurite scans the
   * partition for each, so a large run's coupling writes halve). A transaction that finds otherwise (an admin
   * coupled or uncoupled a record meanwhile) is written again as upserts: the run's coupling wins, as it always did.
   */
  async save(
    company: string,
    mapping: string,
    couplings: Coupling[],
    row: (coupling: Coupling) => CouplingRow = () => undefined,
    /** Whether the coupling's CRM id index row is already right (its CRM id is the one it was read with). */
    indexed: (coupling: Coupling) => boolean = () => false,
  ): Promise<void> {
    if (couplings.length === 0) return;
    const base = baseOf(company, mapping);
    const table = await this.tables.table(tableName);
    // The index first: an index row whose coupling is not written yet finds nothing when checked; a coupling
    // without its index row would be missed by a lookup by CRM id.
    await this.index.write(
      company,
      mapping,
      couplings.filter((coupling) => !indexed(coupling)),
      // A coupling whose row the writer found absent is of a record coupled just now: its CRM id is new here too.
      (coupling) => row(coupling as Coupling) === "absent",
    );
    const actions = couplings.map((coupling): BatchAction => {
      const entity = { partitionKey: bucketedPartition(base, coupling.erpId), rowKey: encodeURIComponent(coupling.erpId), ...withoutUndefined(coupling) };
      const known = row(coupling);
      return known === "absent" ? ["create", entity] : known === "present" ? ["update", entity, "Replace"] : ["upsert", entity, "Replace"];
    });
    await submitTransactions(table, actions, (transaction, status) =>
      status === 409 || status === 404 ? transaction.map(([, entity]) => ["upsert", entity, "Replace"] as const) : undefined,
    );
  }

  async remove(company: string, mapping: string, erpIds: string[]): Promise<void> {
    const base = baseOf(company, mapping);
    // Forgiving: a record only a manifest names has no row yet.
    await deleteRows(
      await this.tables.table(tableName),
      erpIds.map((erpId) => ({ partitionKey: bucketedPartition(base, erpId), rowKey: encodeURIComponent(erpId) })),
    );
    await this.dropFromManifests(company, mapping, new Set(erpIds));
  }

  async removeCompany(company: string): Promise<void> {
    await deleteWhere(await this.tables.table(tableName), bucketRangeFilter(company));
  }

  private async manifests(company: string, mapping: string): Promise<Manifest[]> {
    const table = await this.tables.table(tableName);
    const manifests: Manifest[] = [];
    const partition = manifestPartition(company, mapping).replace(/'/g, "''");
    for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: `PartitionKey eq '${partition}'` } })) {
      manifests.push({
        rowKey: String(row.rowKey),
        etag: String(row.etag),
        writtenAt: Date.parse(String(row.timestamp)),
        entries: manifestEntries(row),
      });
    }
    return manifests;
  }

  /**
   * An uncoupled record leaves the manifests too, so a manifest a crashed run left never brings its coupling
   * back. Rewritten only if unchanged since read (a wave may be deleting it); tried again if it changed.
   */
  private async dropFromManifests(company: string, mapping: string, erpIds: Set<string>): Promise<void> {
    const table = await this.tables.table(tableName);
    for (let attempt = 0; attempt < 3; attempt++) {
      const naming = (await this.manifests(company, mapping)).filter((manifest) => manifest.entries.some(([erpId]) => erpIds.has(erpId)));
      if (naming.length === 0) return;
      const outcomes = await Promise.all(
        naming.map(async (manifest) => {
          const kept = manifest.entries.filter(([erpId]) => !erpIds.has(erpId));
          const partitionKey = manifestPartition(company, mapping);
          try {
            if (kept.length === 0) await table.deleteEntity(partitionKey, manifest.rowKey, { etag: manifest.etag });
            else await table.updateEntity({ partitionKey, rowKey: manifest.rowKey, ...manifestColumns(kept) }, "Replace", { etag: manifest.etag });
            return true;
          } catch (error) {
            if (storageStatus(error) === 404) return true;
            if (storageStatus(error) === 412) return false;
            throw error;
          }
        }),
      );
      if (outcomes.every(Boolean)) return;
    }
  }

  private async deleteManifests(company: string, mapping: string, rowKeys: string[]): Promise<void> {
    // Forgiving: another reader may have recovered (and deleted) the same manifest.
    const partitionKey = manifestPartition(company, mapping);
    await deleteRows(
      await this.tables.table(tableName),
      rowKeys.map((rowKey) => ({ partitionKey, rowKey })),
    );
  }
}
