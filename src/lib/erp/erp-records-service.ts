import * as z from "zod";
import { type FieldError, fieldErrorsFromZod, invalid, notFound } from "../errors";
import { requireCompany, requireSetup } from "../model/company";
import { storageContinuationToken } from "../storage/continuation-token";
import type { ErpRecordRepository } from "../storage/erp-record-repository";
import type { SetupRepository } from "../storage/setup-repository";
import { type ErpTable, erpTables } from "../model/erp-tables";
import { type ErpFields, erpSchemas, maxRecordCharacters, maxRecordsPerRequest } from "../model/erp-schemas";

export const erpReadQuery = z.object({
  modifiedSince: z.string().min(1).max(40).optional(),
  top: z.coerce.number().int("must be a whole number").min(1).max(1000).default(100),
  continuationToken: storageContinuationToken.optional(),
});

/** The ERP side of the sync over HTTP: bulk upsert, changed-since reads, delete (API.md "ERP records"). */
export class ErpRecordsService {
  constructor(
    private readonly init: {
      records: ErpRecordRepository;
      setups: SetupRepository;
      /** Told after records of a table changed (wakes the table's sleeping job entries). */
      onChanged?: (company: string, table: ErpTable) => Promise<void>;
    },
  ) {}

  async upsert(company: string, table: string, body: unknown) {
    const erpTable = await this.target(company, table);
    if (!Array.isArray(body)) throw invalid([{ path: "body", message: "must be a JSON array of records" }]);
    if (body.length === 0 || body.length > maxRecordsPerRequest) {
      throw invalid([{ path: "body", message: `must hold 1 to ${maxRecordsPerRequest} records` }]);
    }
    const schema = erpSchemas[erpTable];
    const errors: FieldError[] = [];
    const records: ErpFields[] = [];
    const seen = new Map<string, number>();
    body.forEach((item, index) => {
      const parsed = schema.safeParse(item);
      if (!parsed.success) {
        errors.push(...fieldErrorsFromZod(parsed.error, [`[${index}]`]));
        return;
      }
      const record = parsed.data as ErpFields;
      const size = JSON.stringify(record).length;
      if (size > maxRecordCharacters) {
        errors.push({ path: `[${index}]`, message: `is too large to store: ${size} characters as JSON, at most ${maxRecordCharacters}` });
        return;
      }
      const first = seen.get(record.id);
      if (first !== undefined) errors.push({ path: `[${index}].id`, message: `repeats the id of record [${first}]` });
      seen.set(record.id, index);
      records.push(record);
    });
    if (errors.length > 0) throw invalid(errors);
    const stored = await this.init.records.upsert(company, erpTable, records);
    await this.init.onChanged?.(company, erpTable);
    return { count: stored.length, records: stored.map((record) => ({ id: record.id, modifiedAt: record.modifiedAt })) };
  }

  async read(company: string, table: string, query: Record<string, string>) {
    const erpTable = await this.target(company, table);
    const input = erpReadQuery.safeParse(query);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const page = await this.init.records.page(company, erpTable, {
      top: input.data.top,
      ...(input.data.modifiedSince && { since: input.data.modifiedSince }),
      ...(input.data.continuationToken && { continuationToken: input.data.continuationToken }),
    });
    return {
      value: page.records.map((record) => ({
        ...record.fields,
        modifiedAt: record.modifiedAt,
        modifiedBy: record.modifiedBy,
        ...(record.deleted && { deleted: true }),
      })),
      ...(page.continuationToken && { continuationToken: page.continuationToken }),
    };
  }

  async delete(company: string, table: string, id: string): Promise<void> {
    const erpTable = await this.target(company, table);
    if (!(await this.init.records.delete(company, erpTable, id))) throw notFound(`No ${table} record "${id}".`);
    await this.init.onChanged?.(company, erpTable);
  }

  private async target(company: string, table: string): Promise<ErpTable> {
    requireCompany(company);
    if (!(erpTables as readonly string[]).includes(table)) throw notFound(`"${table}" is not an ERP table. Tables: ${erpTables.join(", ")}.`);
    await requireSetup(this.init.setups, company);
    return table as ErpTable;
  }
}
