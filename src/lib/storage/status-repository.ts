import type { FailureStep } from "../model/failure-step";
import { type TableStorage, getRow, storageStatus } from "./table-storage";

const tableName = "connectionstatus";

export interface LastTest {
  at: string;
  ok: boolean;
  message: string;
  step?: FailureStep;
}

/** The last connection test per company, kept apart from the setup row so a test does not change its ETag. */
export class StatusRepository {
  constructor(private readonly tables: TableStorage) {}

  async lastTest(company: string): Promise<LastTest | undefined> {
    const row = await getRow<{ at: string; ok: boolean; message: string; step?: string }>(await this.tables.table(tableName), company, "last-test");
    return row && { at: row.at, ok: row.ok, message: row.message, ...(row.step && { step: row.step as FailureStep }) };
  }

  async recordTest(company: string, test: LastTest): Promise<void> {
    const table = await this.tables.table(tableName);
    const { step, ...rest } = test;
    await table.upsertEntity({ partitionKey: company, rowKey: "last-test", ...rest, ...(step && { step }) }, "Replace");
  }

  async remove(company: string): Promise<void> {
    const table = await this.tables.table(tableName);
    await table.deleteEntity(company, "last-test").catch((error: unknown) => {
      if (storageStatus(error) !== 404) throw error;
    });
  }
}
