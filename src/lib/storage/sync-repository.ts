import type { JobSummary } from "../model/active-jobs";
import type { JobEntry, StoredMapping } from "../model/job-entry";
import { ConcurrencyError, type Versioned } from "./setup-repository";
import { tryLock, unlock } from "./company-locks";
import { type LagSeen, readLagSeen, writeLagSeen } from "./lag-seen";
import { deleteWhere, submitTransactions } from "./partition-buckets";
import { type TableStorage, getRow, storageStatus, unlessStatus } from "./table-storage";

const jobsTable = "syncjobs";
const mappingsTable = "syncmappings";
const locksTable = "synclocks";
const lagTable = "synclag";

type Entity = Record<string, unknown> & { partitionKey: string; rowKey: string };

/** Job entries and mappings of each company; rows are partitioned by company. */
export class SyncRepository {
  constructor(private readonly tables: TableStorage) {}

  jobs(company: string): Promise<Versioned<JobEntry>[]> {
    return this.listCompany(jobsTable, company, jobFromRow);
  }

  /** One query: what "X of Y" counts. */
  async jobSummaries(company: string): Promise<JobSummary[]> {
    const table = await this.tables.table(jobsTable);
    const jobs: JobSummary[] = [];
    for await (const row of table.listEntities<JobSummary>({ queryOptions: { filter: partitionFilter(company), select: ["kind", "status"] } })) {
      jobs.push({ kind: row.kind, status: row.status });
    }
    return jobs;
  }

  /** Companies whose entry is due: Ready and past its next run, or In Process with a lapsed lease. */
  async dueJobs(id: string, now: string): Promise<string[]> {
    const table = await this.tables.table(jobsTable);
    const key = rowKeyOf(id).replace(/'/g, "''");
    const filter = `RowKey eq '${key}' and ((status eq 'Ready' and nextRunAt le '${now}') or (status eq 'In Process' and leaseExpiresAt lt '${now}'))`;
    const companies: string[] = [];
    // Entries a full synchronization holds are not due, unless the hold expired (the full run crashed).
    for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { filter, select: ["PartitionKey", "heldUntil"] } })) {
      if (typeof row.heldUntil === "string" && row.heldUntil > now) continue;
      companies.push(String(row.partitionKey));
    }
    return companies;
  }

  async job(company: string, id: string): Promise<Versioned<JobEntry> | undefined> {
    const row = await getRow<Record<string, unknown>>(await this.tables.table(jobsTable), company, rowKeyOf(id));
    return row && { value: jobFromRow(row), etag: row.etag };
  }

  /** Replaces the entry only if it still has this ETag (claims and leases depend on it). */
  async saveJob(job: JobEntry, etag: string): Promise<string> {
    const table = await this.tables.table(jobsTable);
    try {
      const response = await table.updateEntity(toEntity(job.company, job.id, job), "Replace", { etag });
      return response.etag!;
    } catch (error) {
      const status = storageStatus(error);
      if (status === 412 || status === 404) throw new ConcurrencyError("The job entry was changed by another run.");
      throw error;
    }
  }

  /**
   * Where a running entry is: merged into the row without an ETag, so it never breaks the lease or a
   * status request. Only the run's owner writes it, and the run's end replaces the whole row without it.
   */
  async saveProgress(company: string, id: string, progressJson: string): Promise<void> {
    const table = await this.tables.table(jobsTable);
    try {
      await table.updateEntity({ partitionKey: company, rowKey: rowKeyOf(id), progressJson }, "Merge", { etag: "*" });
    } catch (error) {
      if (storageStatus(error) !== 404) throw error;
    }
  }

  /**
   * Sets the status of every job entry of a company (e.g. On Hold when the connection is disabled). A
   * running entry keeps its lease: the status is requested and applied when its run ends.
   */
  async setStatuses(company: string, decide: (job: JobEntry) => JobEntry["status"] | undefined): Promise<void> {
    for (const stored of await this.jobs(company)) {
      let current: Versioned<JobEntry> | undefined = stored;
      // A run (or an enable or disable at the same time) changed the entry meanwhile: decide again on what is there.
      for (let attempt = 0; current; attempt++) {
        const { value, etag } = current;
        const status = decide(value);
        if (status === undefined || (status === value.status && !value.requestedStatus)) break;
        const running = value.status === "In Process" && value.leaseExpiresAt !== undefined && value.leaseExpiresAt > new Date().toISOString();
        const next: JobEntry =
          running && (status === "On Hold" || status === "Ready")
            ? { ...value, requestedStatus: status }
            : { ...value, status, leaseOwner: undefined, leaseExpiresAt: undefined, requestedStatus: undefined };
        try {
          await this.saveJob(next, etag);
          break;
        } catch (error) {
          if (!(error instanceof ConcurrencyError) || attempt >= 20) throw error;
          current = await this.job(company, value.id);
        }
      }
    }
  }

  mappings(company: string): Promise<Versioned<StoredMapping>[]> {
    return this.listCompany(mappingsTable, company, mappingFromRow);
  }

  async mapping(company: string, name: string): Promise<Versioned<StoredMapping> | undefined> {
    const row = await getRow<Record<string, unknown>>(await this.tables.table(mappingsTable), company, rowKeyOf(name));
    return row && { value: mappingFromRow(row), etag: row.etag };
  }

  async lagSeen(company: string, mapping: string): Promise<LagSeen> {
    return readLagSeen(await this.tables.table(lagTable), company, mapping);
  }

  async saveLagSeen(company: string, mapping: string, seen: LagSeen): Promise<void> {
    await writeLagSeen(await this.tables.table(lagTable), company, mapping, seen);
  }

  async saveMapping(mapping: StoredMapping, etag: string): Promise<string> {
    const table = await this.tables.table(mappingsTable);
    try {
      return (await table.updateEntity(toEntity(mapping.company, mapping.name, mapping), "Replace", { etag })).etag!;
    } catch (error) {
      if (storageStatus(error) === 412) throw new ConcurrencyError("The mapping was changed by another run.");
      throw error;
    }
  }

  /** A short lock per company and purpose (company-locks.ts): true when this caller got it. */
  async tryLock(company: string, purpose: string, owner: string, ttlMs: number): Promise<boolean> {
    return tryLock(await this.tables.table(locksTable), company, purpose, owner, ttlMs);
  }

  async unlock(company: string, purpose: string, owner: string): Promise<void> {
    await unlock(await this.tables.table(locksTable), company, purpose, owner);
  }

  /** Adds a job entry unless one with its id exists (answers whether it was added). */
  async addJob(job: JobEntry): Promise<boolean> {
    const table = await this.tables.table(jobsTable);
    try {
      await table.createEntity(toEntity(job.company, job.id, job));
      return true;
    } catch (error) {
      if (storageStatus(error) === 409) return false;
      throw error;
    }
  }

  async removeJob(company: string, id: string): Promise<void> {
    const table = await this.tables.table(jobsTable);
    await table.deleteEntity(company, rowKeyOf(id)).catch((error: unknown) => {
      if (storageStatus(error) !== 404) throw error;
    });
  }

  async hasMappings(company: string): Promise<boolean> {
    const table = await this.tables.table(mappingsTable);
    const page = await table
      .listEntities({ queryOptions: { filter: partitionFilter(company), select: ["RowKey"] } })
      .byPage({ maxPageSize: 1 })
      .next();
    return !page.done && page.value.length > 0;
  }

  /** Deletes the company's mappings and jobs and writes the new ones, in entity-group transactions. */
  /**
   * Replaces a company's mappings and job entries. Rows of the new setup are written over the old ones rather
   * than deleted first, so a run holding a mapping or an entry finds its row (and its lease, which the caller
   * carries over) at every moment; rows the new setup does not have go.
   */
  async replaceSetup(company: string, mappings: StoredMapping[], jobs: JobEntry[]): Promise<void> {
    const keep = { [mappingsTable]: new Set(mappings.map((mapping) => rowKeyOf(mapping.name))), [jobsTable]: new Set(jobs.map((job) => rowKeyOf(job.id))) };
    for (const name of [mappingsTable, jobsTable] as const) {
      const table = await this.tables.table(name);
      for await (const row of table.listEntities({ queryOptions: { filter: partitionFilter(company), select: ["RowKey"] } })) {
        if (!keep[name].has(String(row.rowKey))) await table.deleteEntity(company, String(row.rowKey)).catch(unlessStatus(404));
      }
    }
    await deleteWhere(await this.tables.table(lagTable), partitionFilter(company));
    await this.transact(
      mappingsTable,
      mappings.map((mapping) => ["upsert", toEntity(company, mapping.name, mapping), "Replace"] as const),
    );
    await this.transact(
      jobsTable,
      jobs.map((job) => ["upsert", toEntity(company, job.id, job), "Replace"] as const),
    );
  }

  async removeCompany(company: string): Promise<void> {
    for (const name of [mappingsTable, jobsTable, lagTable]) await deleteWhere(await this.tables.table(name), partitionFilter(company));
  }

  private async listCompany<T>(name: string, company: string, fromRow: (row: Record<string, unknown>) => T): Promise<Versioned<T>[]> {
    const table = await this.tables.table(name);
    const rows: Versioned<T>[] = [];
    for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: partitionFilter(company) } })) {
      rows.push({ value: fromRow(row), etag: String(row.etag) });
    }
    return rows;
  }

  private async transact(name: string, actions: Parameters<typeof submitTransactions>[1]): Promise<void> {
    if (actions.length > 0) await submitTransactions(await this.tables.table(name), actions);
  }
}

function partitionFilter(company: string): string {
  return `PartitionKey eq '${company.replace(/'/g, "''")}'`;
}

/** Row keys may not hold / \ # ?; mapping names hold spaces and dashes only, kept readable. */
function rowKeyOf(id: string): string {
  return id.replace(/[/\\#?]/g, "_");
}

function toEntity(company: string, id: string, value: object): Entity {
  const entity: Entity = { partitionKey: company, rowKey: rowKeyOf(id) };
  for (const [key, item] of Object.entries(value)) if (item !== undefined && key !== "company") entity[key] = item;
  return entity;
}

function jobFromRow(row: Record<string, unknown>): JobEntry {
  return stripTableFields(row) as unknown as JobEntry;
}

function mappingFromRow(row: Record<string, unknown>): StoredMapping {
  // Rows written before the lag lists moved to their own table still carry them.
  const { erpLagSeen: _erp, crmLagSeen: _crm, ...mapping } = stripTableFields(row);
  return mapping as unknown as StoredMapping;
}

function stripTableFields(row: Record<string, unknown>): Record<string, unknown> {
  const { partitionKey, rowKey: _rowKey, etag: _etag, timestamp: _timestamp, ...rest } = row;
  // The service's own annotations ("odata.metadata" carries the storage endpoint URL) are not the row's data:
  // kept, they would be written back into rows and shown in answers.
  for (const key of Object.keys(rest)) if (key.startsWith("odata.") || key.includes("@odata.")) delete rest[key];
  return { ...rest, company: partitionKey };
}
