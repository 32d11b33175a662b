import type { Coupling } from "../model/coupling";
import { bucketRangeFilter, bucketedPartition, deleteWhere, submitTransactions } from "./partition-buckets";
import type { TableStorage } from "./table-storage";

const tableName = "couplings";

/**
 * ERP id <-> CRM id per company and mapping, with what was last synchronized. One partition per mapping,
 * read whole at the start of a run (a few requests for thousands of couplings) and written in
 * entity-group transactions.
 */
export class CouplingRepository {
  constructor(private readonly tables: TableStorage) {}

  async load(company: string, mapping: string): Promise<Coupling[]> {
    const table = await this.tables.table(tableName);
    const couplings: Coupling[] = [];
    for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: bucketRangeFilter(baseOf(company, mapping)) } })) {
      couplings.push({
        erpId: decodeURIComponent(String(row.rowKey)),
        crmId: String(row.crmId),
        pending: row.pending === true,
        ...(typeof row.erpModifiedAt === "string" && { erpModifiedAt: row.erpModifiedAt }),
        ...(typeof row.crmModifiedOn === "string" && { crmModifiedOn: row.crmModifiedOn }),
        ...(typeof row.syncedJson === "string" && { synced: JSON.parse(row.syncedJson) as Coupling["synced"] }),
      });
    }
    return couplings;
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
    await this.transact(erpIds.map((erpId) => ["delete", { partitionKey: bucketedPartition(base, erpId), rowKey: encodeURIComponent(erpId) }] as const));
  }

  async removeCompany(company: string): Promise<void> {
    await deleteWhere(await this.tables.table(tableName), bucketRangeFilter(company));
  }

  private async transact(actions: Parameters<typeof submitTransactions>[1]): Promise<void> {
    if (actions.length > 0) await submitTransactions(await this.tables.table(tableName), actions);
  }
}

/** Couplings of one company and mapping live in the partitions `<company>~<mapping>~<bucket>`. */
function baseOf(company: string, mapping: string): string {
  return `${company}~${mapping}`;
}

function withoutUndefined(coupling: Coupling): Record<string, unknown> {
  const { erpId: _erpId, synced, ...rest } = coupling;
  return { ...Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)), ...(synced && { syncedJson: JSON.stringify(synced) }) };
}
