// The couplings' CRM id index: which ERP record a CRM row is coupled to, found without reading the mapping whole.
import type { Coupling } from "../model/coupling";
import { baseOf } from "./coupling-rows";
import { bucketedPartition, rowsByKeys, submitTransactions } from "./partition-buckets";
import type { TableStorage } from "./table-storage";
import type { BatchAction } from "./entity-batch";

/**
 * A row per coupled CRM id naming its ERP id, in partitions `<company>~<mapping>!crm~<bucket>` of the couplings
 * table (outside the couplings' range, inside the company's, so removing a company removes it). A coupling and
 * its index row sit in different partitions, so no transaction holds both: the index is written before its
 * couplings, and a reader checks the coupling an index row names (CouplingRepository.byCrmIds). An index row
 * left stale by a later write (uncoupled, coupled elsewhere) then finds nothing; it is never deleted.
 */
export class CouplingIndex {
  constructor(
    private readonly tables: TableStorage,
    private readonly tableName: string,
  ) {}

  /** The ERP ids the index names for these CRM ids (lower case), to be checked against their couplings. */
  async erpIdsOf(company: string, mapping: string, crmIds: string[]): Promise<Map<string, string>> {
    const rows = await rowsByKeys(
      await this.tables.table(this.tableName),
      crmIds.map((crmId) => ({ partitionKey: partitionOf(company, mapping, crmId), rowKey: crmId.toLowerCase() })),
    );
    return new Map(rows.map((row) => [String(row.rowKey), String(row.erpId)]));
  }

  /**
   * Index rows for these couplings, grouped by partition into entity-group transactions. A coupling of a CRM row
   * made just now (`isNew`) has its index row created, which storage answers with one lookup where an upsert
   * takes two (Azurite scans the partition for each); a transaction that meets an old row of the same CRM id is
   * written again as upserts.
   */
  async write(
    company: string,
    mapping: string,
    couplings: Pick<Coupling, "erpId" | "crmId">[],
    isNew: (coupling: Pick<Coupling, "erpId" | "crmId">) => boolean = () => false,
  ): Promise<void> {
    if (couplings.length === 0) return;
    await submitTransactions(
      await this.tables.table(this.tableName),
      couplings.map((coupling): BatchAction => {
        const crmId = coupling.crmId.toLowerCase();
        const entity = { partitionKey: partitionOf(company, mapping, crmId), rowKey: crmId, erpId: coupling.erpId };
        return isNew(coupling) ? ["create", entity] : ["upsert", entity, "Replace"];
      }),
      (transaction, status) => (status === 409 ? transaction.map(([, entity]) => ["upsert", entity, "Replace"] as const) : undefined),
    );
  }
}

function partitionOf(company: string, mapping: string, crmId: string): string {
  return bucketedPartition(`${baseOf(company, mapping)}!crm`, crmId.toLowerCase());
}
