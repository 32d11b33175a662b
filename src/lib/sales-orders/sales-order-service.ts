// Over 250 lines: listing, Create in ERP and the two jobs share the order lookups and the lock; the jobs could move to their own module.
import { randomUUID } from "node:crypto";
import * as z from "zod";
import type { CrmConnector } from "../connection/crm-connector";
import type { DataverseClient } from "../dataverse/dataverse-client";
import { DataverseRequestError } from "../dataverse/dataverse-errors";
import { type ErpFields, erpSchemas, maxRecordCharacters } from "../model/erp-schemas";
import { conflict, fieldErrorsFromZod, invalid, notFound, Refusal, inputMessages } from "../errors";
import { requireSetup } from "../model/company";
import type { ConnectionSetup } from "../model/connection-setup";
import type { CouplingRepository } from "../storage/coupling-repository";
import type { ErpRecordRepository } from "../storage/erp-record-repository";
import { type SyncErrorEntry, type SyncLogEntry, SyncLogRepository } from "../storage/sync-log-repository";
import type { SetupRepository } from "../storage/setup-repository";
import type { SyncRepository } from "../storage/sync-repository";
import type { Coupling } from "../model/coupling";
import { companyBind, ownerOf, scopeColumns, scopeOf, withScope } from "../model/company-scope";
import type { OrderNumberRepository } from "../storage/order-numbers";
import { emptyCounts } from "../model/sync-plan";
import {
  type CrmRow,
  type OrderLookups,
  crmLineColumns,
  crmOrderColumns,
  crmStatusChange,
  orderState,
  orderStatus,
  salesOrderMapping,
  salesOrderMessages,
  toErpOrder,
} from "./crm-sales-order";

export const submittedQuery = z.object({
  top: z.coerce.number().int("must be a whole number").min(1, "must be at least 1").max(250, "must be at most 250").default(50),
  continuationToken: z.string().max(4000).optional(),
});

export interface SubmittedOrder {
  crmOrderId: string;
  orderNumber: string;
  name: string;
  customer: { crmId: string; erpNo: string | null };
  currencyCode: string | null;
  totalAmount: number;
  totalLineItemAmount: number;
  totalDiscountAmount: number;
  totalTax: number;
  submittedAt: string | null;
  requestedDeliveryDate: string | null;
  /** The ERP order made from it, if any (deleted: it was deleted in the ERP since). */
  erpOrder: { no: string; deleted: boolean } | null;
}

export interface SalesOrderJobResult {
  created: number;
  statusesReported: number;
  failed: number;
  log: SyncLogEntry;
}

/**
 * Sales orders submitted in Dynamics 365 Sales, as the ERP's "Sales Orders - Dynamics 365 Sales" page and
 * its job handle them: list them, create the ERP order from one (coupled to it), create them all when
 * "Auto Create Sales Orders" is on, and report the ERP order's shipping and invoicing back to the CRM order.
 */
export class SalesOrderService {
  private readonly clock: () => Date;

  constructor(
    private readonly init: {
      setups: SetupRepository;
      connector: CrmConnector;
      couplings: CouplingRepository;
      erpRecords: ErpRecordRepository;
      sync: SyncRepository;
      logs: SyncLogRepository;
      orderNumbers: OrderNumberRepository;
      clock?: () => Date;
    },
  ) {
    this.clock = init.clock ?? (() => new Date());
  }

  async listSubmitted(company: string, query: unknown): Promise<{ value: SubmittedOrder[]; continuationToken?: string }> {
    const input = submittedQuery.safeParse(query);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const setup = await this.requireIntegration(company);
    const client = await this.init.connector.client(setup);
    let skipToken: string | undefined;
    if (input.data.continuationToken) {
      skipToken = Buffer.from(input.data.continuationToken, "base64url").toString("utf8");
      // Dataverse's paging cookie (<cookie pagenumber=... />); anything else was not given out here.
      if (!/^<cookie [^>]*\/>$/.test(skipToken)) throw invalid([{ path: "continuationToken", message: inputMessages.foreignToken }]);
    }
    let page: { rows: CrmRow[]; skipToken?: string };
    try {
      page = await client.retrievePage(
        "salesorders",
        {
          select: [...crmOrderColumns, ...scopeColumns(setup, "salesorders")],
          filter: withScope(setup, "salesorders", `statecode eq ${orderState.submitted}`)!,
          orderBy: "submitdate desc,salesorderid asc",
          pageSize: input.data.top,
        },
        skipToken,
      );
    } catch (error) {
      // A cookie Dataverse does not take (expired, altered) is the caller's token, not a server fault.
      if (skipToken && error instanceof DataverseRequestError && error.status === 400) {
        throw invalid([{ path: "continuationToken", message: inputMessages.foreignToken }]);
      }
      throw error;
    }
    const [customers, currencies, orders] = await Promise.all([
      this.crmToErp(company, "CUSTOMER"),
      this.crmToErp(company, "CURRENCY"),
      this.init.couplings.load(company, salesOrderMapping),
    ]);
    const byCrm = new Map(orders.map((coupling) => [coupling.crmId.toLowerCase(), coupling.erpId]));
    const value = await Promise.all(
      page.rows.map(async (row): Promise<SubmittedOrder> => {
        const crmOrderId = String(row.salesorderid).toLowerCase();
        const erpNo = byCrm.get(crmOrderId);
        const erpRecord = erpNo ? await this.init.erpRecords.get(company, "salesOrders", erpNo) : undefined;
        return {
          crmOrderId,
          orderNumber: String(row.ordernumber ?? ""),
          name: String(row.name ?? ""),
          customer: {
            crmId: String(row._customerid_value ?? "").toLowerCase(),
            erpNo: customers.get(String(row._customerid_value ?? "").toLowerCase()) ?? null,
          },
          currencyCode: currencies.get(String(row._transactioncurrencyid_value ?? "").toLowerCase()) ?? null,
          totalAmount: Number(row.totalamount ?? 0),
          totalLineItemAmount: Number(row.totallineitemamount ?? 0),
          totalDiscountAmount: Number(row.totaldiscountamount ?? 0),
          totalTax: Number(row.totaltax ?? 0),
          submittedAt: typeof row.submitdate === "string" ? row.submitdate : null,
          requestedDeliveryDate: typeof row.requestdeliveryby === "string" ? row.requestdeliveryby.slice(0, 10) : null,
          erpOrder: erpNo ? { no: erpNo, deleted: !erpRecord || erpRecord.deleted } : null,
        };
      }),
    );
    return { value, ...(page.skipToken && { continuationToken: Buffer.from(page.skipToken).toString("base64url") }) };
  }

  /** "Create in ERP" for one submitted CRM order: the ERP order with its lines, coupled to the CRM order. */
  async createInErp(company: string, crmOrderId: string): Promise<{ order: ErpFields; created: boolean }> {
    if (!z.uuid().safeParse(crmOrderId).success) throw invalid([{ path: "crmOrderId", message: "must be the CRM order's id (a GUID)" }]);
    const setup = await this.requireIntegration(company);
    const client = await this.init.connector.client(setup);
    const id = crmOrderId.toLowerCase();
    const made = await this.locked(company, id, async () => {
      let order: CrmRow;
      try {
        order = await client.retrieve("salesorders", id, [...crmOrderColumns, ...scopeColumns(setup, "salesorders")]);
      } catch (error) {
        if (error instanceof DataverseRequestError && error.status === 404) throw notFound(salesOrderMessages.noSuchOrder(id));
        throw error;
      }
      return this.create(company, setup, client, order);
    });
    if (!made) throw conflict("This order is being created in the ERP by another request. Try again in a moment.");
    return made;
  }

  /** Two creators of one order (a double click, the job and a user) must not make two ERP orders. */
  private async locked<T>(company: string, crmOrderId: string, work: () => Promise<T>): Promise<T | undefined> {
    const owner = randomUUID();
    if (!(await this.init.sync.tryLock(company, `order-${crmOrderId}`, owner, 60_000))) return undefined;
    try {
      return await work();
    } finally {
      await this.init.sync.unlock(company, `order-${crmOrderId}`, owner);
    }
  }

  /**
   * The sales order jobs: AUTO CREATE SALES ORDERS ("create") makes ERP orders of the submitted CRM orders
   * not made yet; SALES ORDER STATUS ("status") reports shipped and invoiced ERP orders to their CRM orders.
   * One log row per run, with an error row per order that failed.
   */
  async runJob(company: string, runId: string, job: "create" | "status"): Promise<SalesOrderJobResult> {
    const started = this.clock();
    const setup = await this.requireIntegration(company);
    const client = await this.init.connector.client(setup);
    const counts = emptyCounts();
    const errors: SyncErrorEntry[] = [];
    let created = 0;
    if (job === "create" && setup.autoCreateSalesOrders) {
      for (let skipToken: string | undefined, first = true; first || skipToken; first = false) {
        const page: { rows: CrmRow[]; skipToken?: string } = await client.retrievePage(
          "salesorders",
          {
            select: [...crmOrderColumns, ...scopeColumns(setup, "salesorders")],
            filter: withScope(setup, "salesorders", `statecode eq ${orderState.submitted}`)!,
            orderBy: "submitdate asc,salesorderid asc",
            pageSize: 250,
          },
          skipToken,
        );
        skipToken = page.skipToken;
        const coupled = new Set((await this.init.couplings.load(company, salesOrderMapping)).map((coupling) => coupling.crmId.toLowerCase()));
        for (const order of page.rows) {
          const id = String(order.salesorderid).toLowerCase();
          if (coupled.has(id)) continue;
          try {
            // Being created by a user right now, or made meanwhile: not this run's to make, and not a failure.
            const made = await this.locked(company, id, () => this.create(company, setup, client, order));
            if (made?.created) created++;
          } catch (error) {
            if (error instanceof Refusal && "erpOrderNo" in error.extensions) continue;
            counts.failed++;
            errors.push({ sourceId: String(order.ordernumber ?? order.salesorderid), reason: error instanceof Error ? error.message : String(error) });
          }
        }
      }
    }
    const statuses = job === "status" ? await this.reportStatuses(company, client, errors) : { reported: 0, deleted: 0, failed: 0 };
    counts.inserted = created;
    counts.modified = statuses.reported;
    counts.deleted = statuses.deleted;
    counts.failed += statuses.failed;
    const log: SyncLogEntry = {
      id: SyncLogRepository.newLogId(started, runId, job === "create" ? "fromCrm" : "toCrm"),
      runId,
      mapping: job === "create" ? "AUTO CREATE SALES ORDERS" : "SALES ORDER STATUS",
      direction: job === "create" ? "fromCrm" : "toCrm",
      startedAt: started.toISOString(),
      finishedAt: this.clock().toISOString(),
      ...counts,
      message: counts.failed > 0 ? `${counts.failed} order(s) failed; see the errors of this run.` : "Completed.",
    };
    await this.init.logs.write(company, log, errors);
    return { created, statusesReported: statuses.reported, failed: counts.failed, log };
  }

  private async create(company: string, setup: ConnectionSetup, client: DataverseClient, order: CrmRow): Promise<{ order: ErpFields; created: boolean }> {
    const crmOrderId = String(order.salesorderid).toLowerCase();
    const number = String(order.ordernumber ?? crmOrderId);
    // Another ERP company's order on the same organization is not this company's to make.
    if (ownerOf(setup, "salesorders", order) === "other") throw conflict(salesOrderMessages.otherCompany(number));
    const existing = (await this.init.couplings.load(company, salesOrderMapping)).find((coupling) => coupling.crmId.toLowerCase() === crmOrderId);
    if (existing) {
      const record = await this.init.erpRecords.get(company, "salesOrders", existing.erpId);
      if (record && !record.deleted) throw conflict(salesOrderMessages.alreadyCreated(number, existing.erpId), { erpOrderNo: existing.erpId });
    }
    if (Number(order.statecode) !== orderState.submitted) throw conflict(salesOrderMessages.notSubmitted(number));
    const lines = await client.retrieveMultiple("salesorderdetails", { select: crmLineColumns, filter: `_salesorderid_value eq ${crmOrderId}` });
    const lookups = await this.lookups(company, client, lines);
    const made = toErpOrder(order, lines, lookups, this.clock().toISOString().slice(0, 10), "");
    if ("problems" in made)
      throw new Refusal(
        "unprocessable",
        made.problems.join(" "),
        made.problems.map((message) => ({ path: "order", message })),
      );
    // An order the ERP can take gets its number: the same one on a retry, never one another order has.
    made.order.id = await this.init.orderNumbers.numberFor(company, crmOrderId);
    // The order must be one the ERP itself would take (quantities, prices, at most 100 lines).
    const valid = erpSchemas.salesOrders.safeParse(made.order);
    const size = JSON.stringify(made.order).length;
    if (!valid.success || size > maxRecordCharacters) {
      const problems = valid.success
        ? [salesOrderMessages.invalidLine(number, `the order is too large to store: ${size} characters as JSON, at most ${maxRecordCharacters}`)]
        : valid.error.issues.map((issue) => salesOrderMessages.invalidLine(number, `${issue.path.join(".")} ${issue.message}`));
      throw new Refusal(
        "unprocessable",
        problems.join(" "),
        problems.map((message) => ({ path: "order", message })),
      );
    }
    // A number another ERP order holds is never overwritten; the same order's record (a crashed attempt, or
    // one uncoupled since) is coupled again rather than written over.
    let taken = await this.init.erpRecords.get(company, "salesOrders", made.order.id);
    // A number the ERP gave one of its own orders is passed over: the CRM order gets the next one.
    for (let attempt = 0; taken && !taken.deleted && String(taken.fields.crmOrderId ?? "").toLowerCase() !== crmOrderId; attempt++) {
      if (attempt >= 20) throw conflict(salesOrderMessages.numberTaken(number, made.order.id));
      made.order.id = await this.init.orderNumbers.renumber(company, crmOrderId);
      taken = await this.init.erpRecords.get(company, "salesOrders", made.order.id);
    }
    if (taken && !taken.deleted) {
      await this.init.couplings.save(company, salesOrderMapping, [
        { erpId: made.order.id, crmId: crmOrderId, pending: false, erpModifiedAt: taken.modifiedAt },
      ]);
      throw conflict(salesOrderMessages.alreadyCreated(number, made.order.id), { erpOrderNo: made.order.id });
    }
    // Taken for this company first (on the ETag it was read with), so two companies never both make it.
    const companyId = scopeOf(setup, "salesorders");
    if (companyId && ownerOf(setup, "salesorders", order) === "unclaimed") {
      try {
        await client.update("salesorders", crmOrderId, companyBind(companyId), String(order["@odata.etag"] ?? "*"));
      } catch (error) {
        if (error instanceof DataverseRequestError && error.status === 412) throw conflict(salesOrderMessages.changedMeanwhile(number));
        throw error;
      }
    }
    // The record first, then the coupling: a crash between them leaves a record the retry finds by its number.
    const [stored] = await this.init.erpRecords.upsert(company, "salesOrders", [made.order], "crm-sync");
    await this.init.couplings.save(company, salesOrderMapping, [
      { erpId: made.order.id, crmId: crmOrderId, pending: false, erpModifiedAt: stored!.modifiedAt },
    ]);
    // As the ERP does: CRM users see when the order reached the back office. The order exists either way.
    await client.update("salesorders", crmOrderId, { lastbackofficesubmit: String(made.order.orderDate) }).catch(() => undefined);
    return { order: made.order, created: true };
  }

  /**
   * Coupled ERP orders that changed since they were last reported (one read of the company's orders):
   * shipped -> Fulfilled, invoiced -> Invoiced; a deleted one is reported in the log and uncoupled, so the
   * CRM order can be created in the ERP again.
   */
  private async reportStatuses(
    company: string,
    client: DataverseClient,
    errors: SyncErrorEntry[],
  ): Promise<{ reported: number; deleted: number; failed: number }> {
    const result = { reported: 0, deleted: 0, failed: 0 };
    const couplings = new Map((await this.init.couplings.load(company, salesOrderMapping)).map((coupling) => [coupling.erpId, coupling]));
    if (couplings.size === 0) return result;
    const changed = (await this.init.erpRecords.changedSince(company, "salesOrders"))
      .map((record) => ({ record, coupling: couplings.get(record.id) }))
      .filter(
        (entry): entry is { record: (typeof entry)["record"]; coupling: Coupling } =>
          entry.coupling !== undefined && entry.record.modifiedAt !== entry.coupling.erpModifiedAt,
      );
    if (changed.length === 0) return result;
    const ids = changed.map(({ coupling }) => coupling.crmId);
    const rows = new Map(
      (await client.retrieveByIds("salesorders", "salesorderid", ids, { select: ["salesorderid", "ordernumber", "statecode", "statuscode"] })).map((row) => [
        String(row.salesorderid).toLowerCase(),
        row,
      ]),
    );
    const reported: Coupling[] = [];
    const uncoupled: string[] = [];
    for (const { coupling, record } of changed) {
      const crm = rows.get(coupling.crmId.toLowerCase());
      const number = String(crm?.ordernumber ?? coupling.crmId);
      if (record.deleted) {
        errors.push({ sourceId: coupling.erpId, destinationId: coupling.crmId, reason: salesOrderMessages.deletedInErp(coupling.erpId, number) });
        result.deleted++;
        uncoupled.push(coupling.erpId);
        continue;
      }
      try {
        const change = crm ? crmStatusChange(record.fields, crm) : undefined;
        if (change) {
          await setOrderState(client, coupling.crmId, change);
          result.reported++;
        }
        reported.push({ ...coupling, erpModifiedAt: record.modifiedAt });
      } catch (error) {
        result.failed++;
        errors.push({ sourceId: coupling.erpId, destinationId: coupling.crmId, reason: error instanceof Error ? error.message : String(error) });
      }
    }
    if (reported.length > 0) await this.init.couplings.save(company, salesOrderMapping, reported);
    if (uncoupled.length > 0) await this.init.couplings.remove(company, salesOrderMapping, uncoupled);
    return result;
  }

  private async lookups(company: string, client: DataverseClient, lines: CrmRow[]): Promise<OrderLookups> {
    const unitIds = [...new Set(lines.map((line) => String(line._uomid_value ?? "")).filter(Boolean))];
    const [customers, items, resources, currencies, salespeople, units, organization] = await Promise.all([
      this.crmToErp(company, "CUSTOMER"),
      this.crmToErp(company, "ITEM-PRODUCT"),
      this.crmToErp(company, "RESOURCE-PRODUCT"),
      this.crmToErp(company, "CURRENCY"),
      this.crmToErp(company, "SALESPEOPLE"),
      unitIds.length > 0 ? client.retrieveByIds("uoms", "uomid", unitIds, { select: ["uomid", "name"] }) : Promise.resolve([]),
      client.retrieveMultiple("organizations", { select: ["_basecurrencyid_value"], top: 1 }),
    ]);
    const baseCurrencyId = organization[0]?._basecurrencyid_value;
    return {
      customers,
      items,
      resources,
      currencies,
      salespeople,
      units: new Map(units.map((unit) => [String(unit.uomid).toLowerCase(), String(unit.name)])),
      ...(typeof baseCurrencyId === "string" && { baseCurrencyId }),
    };
  }

  private async crmToErp(company: string, mapping: string): Promise<Map<string, string>> {
    return new Map(
      (await this.init.couplings.load(company, mapping))
        .filter((coupling) => !coupling.pending)
        .map((coupling) => [coupling.crmId.toLowerCase(), coupling.erpId]),
    );
  }

  private async requireIntegration(company: string): Promise<ConnectionSetup> {
    const stored = await requireSetup(this.init.setups, company);
    if (!stored.value.isEnabled) throw conflict(salesOrderMessages.notEnabled);
    if (!stored.value.salesOrderIntegrationEnabled) throw conflict(salesOrderMessages.integrationOff);
    return stored.value;
  }
}

/** The documented ways to close a CRM order: FulfillSalesOrder (an order close activity) and the Invoiced state. */
async function setOrderState(client: DataverseClient, crmOrderId: string, change: "fulfill" | "invoice"): Promise<void> {
  if (change === "fulfill") {
    await client.action("FulfillSalesOrder", {
      OrderClose: { subject: "Shipped in the ERP", "salesorderid@odata.bind": `/salesorders(${crmOrderId})` },
      Status: orderStatus.complete,
    });
    return;
  }
  await client.update("salesorders", crmOrderId, { statecode: orderState.invoiced, statuscode: orderStatus.invoiced });
}
