import * as z from "zod";
import { type FieldError, fieldErrorsFromZod, invalid, notFound } from "../errors";
import { requireCompany, requireSetup } from "../model/company";
import { storageContinuationToken } from "../storage/continuation-token";
import type { ErpRecordRepository } from "../storage/erp-record-repository";
import type { SetupRepository } from "../storage/setup-repository";
import { type ErpTable, erpTables } from "../model/erp-tables";
import { mapLimit, pointReadParallelism } from "../map-limit";
import { type ErpFields, erpSchemas, maxRecordCharacters, maxRecordsPerRequest } from "../model/erp-schemas";

export const crmOrderIdMessages = {
  notSet: "is set by the service when it creates the order from Dynamics 365 Sales (create-in-erp); leave it out",
  changed: (stored: string) => `is set by the service and is ${stored} for this order; send that value or leave it out`,
} as const;

export const erpReadQuery = z.object({
  // A `modifiedAt` this API gave out (ISO time and a sequence), or a plain ISO time in UTC.
  modifiedSince: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z(-\d{6})?$/, "must be a modifiedAt this API gave out, or a UTC time such as 2026-11-26T06:04:24Z")
    .refine((value) => !Number.isNaN(Date.parse(value.replace(/-\d{6}$/, ""))), "must be a real date and time")
    // Written as stamps are (milliseconds always), so it compares with them as text.
    .transform((value) => {
      const [, time, sequence] = /^(.*Z)(-\d{6})?$/.exec(value)!;
      return `${new Date(time!).toISOString()}${sequence ?? ""}`;
    })
    .optional(),
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
    if (erpTable === "salesOrders") errors.push(...(await this.serviceSetFields(company, records)));
    if (errors.length > 0) throw invalid(errors);
    const stored = await this.init.records.upsert(company, erpTable, records);
    await this.init.onChanged?.(company, erpTable);
    return { count: stored.length, records: stored.map((record) => ({ id: record.id, modifiedAt: record.modifiedAt })) };
  }

  /**
   * A sales order's `crmOrderId` is the service's (create-in-erp sets it): a record may send back the value it
   * read, or leave it out (the stored one is kept), but never name another CRM order.
   */
  private async serviceSetFields(company: string, records: ErpFields[]): Promise<FieldError[]> {
    const errors: FieldError[] = [];
    await mapLimit([...records.entries()], pointReadParallelism, async ([index, record]) => {
      const stored = (await this.init.records.get(company, "salesOrders", record.id))?.fields.crmOrderId;
      const sent = record.crmOrderId;
      if (sent === undefined) {
        if (stored !== undefined) record.crmOrderId = stored;
      } else if (String(sent).toLowerCase() !== String(stored ?? "").toLowerCase()) {
        errors.push({
          path: `[${index}].crmOrderId`,
          message: stored === undefined ? crmOrderIdMessages.notSet : crmOrderIdMessages.changed(String(stored)),
        });
      }
    });
    return errors.sort((a, b) => a.path.localeCompare(b.path, "en", { numeric: true }));
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
