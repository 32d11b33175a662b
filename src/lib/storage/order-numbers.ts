import { getRow, storageStatus, type TableStorage } from "./table-storage";

const tableName = "ordernumbers";
const counterKey = "counter";

/**
 * ERP order numbers given to CRM orders, per company: one number per CRM order, kept before the ERP order is
 * made (a retry after a crash finds the same number), and drawn from a counter (ETag-conditional), so no two
 * orders can ever share one, whatever their ids.
 */
export class OrderNumberRepository {
  constructor(private readonly tables: TableStorage) {}

  async numberFor(company: string, crmOrderId: string): Promise<string> {
    const table = await this.tables.table(tableName);
    const key = keyOf(crmOrderId);
    const given = await getRow<Record<string, unknown>>(table, company, key);
    if (given) return String(given.number);
    const number = await this.draw(company);
    try {
      await table.createEntity({ partitionKey: company, rowKey: key, number });
      return number;
    } catch (error) {
      // The same order got its number from another request meanwhile: that one stands (this one is a gap).
      if (storageStatus(error) !== 409) throw error;
      return String((await getRow<Record<string, unknown>>(table, company, key))!.number);
    }
  }

  /** The order's number is held by an ERP order of the ERP's own: the CRM order gets the next number instead. */
  async renumber(company: string, crmOrderId: string): Promise<string> {
    const number = await this.draw(company);
    await (await this.tables.table(tableName)).upsertEntity({ partitionKey: company, rowKey: keyOf(crmOrderId), number }, "Replace");
    return number;
  }

  private async draw(company: string): Promise<string> {
    const table = await this.tables.table(tableName);
    for (;;) {
      const counter = await getRow<Record<string, unknown>>(table, company, counterKey);
      const next = Number(counter?.last ?? 0) + 1;
      try {
        if (counter) await table.updateEntity({ partitionKey: company, rowKey: counterKey, last: next }, "Replace", { etag: counter.etag });
        else await table.createEntity({ partitionKey: company, rowKey: counterKey, last: next });
        return erpOrderNoOf(next);
      } catch (error) {
        // Another order drew a number meanwhile: draw again.
        if (storageStatus(error) !== 412 && storageStatus(error) !== 409) throw error;
      }
    }
  }

  async removeCompany(company: string): Promise<void> {
    const table = await this.tables.table(tableName);
    for await (const row of table.listEntities({ queryOptions: { filter: `PartitionKey eq '${company.replace(/'/g, "''")}'`, select: ["RowKey"] } })) {
      await table.deleteEntity(company, String(row.rowKey)).catch(() => undefined);
    }
  }
}

function keyOf(crmOrderId: string): string {
  return `order-${crmOrderId.toLowerCase()}`;
}

/** `SO-CRM-000001`: an ERP number (at most 20 characters) that says where the order came from. */
export function erpOrderNoOf(sequence: number): string {
  return `SO-CRM-${String(sequence).padStart(6, "0")}`;
}
