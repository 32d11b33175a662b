import type { CrmConnector } from "../connection/crm-connector";
import type { ErpFields } from "../erp/erp-schemas";
import { conflict, notFound } from "../errors";
import { requireCompany } from "../setup/setup-service";
import type { CouplingRepository } from "../storage/coupling-repository";
import type { ErpRecordRepository } from "../storage/erp-record-repository";
import type { SetupRepository } from "../storage/setup-repository";
import { type SyncErrorEntry, type SyncLogEntry, SyncLogRepository } from "../storage/sync-log-repository";
import type { Coupling } from "../sync/coupling";
import { emptyCounts } from "../sync/sync-plan";

/**
 * The CUSTOMER STATISTICS job (BC's "CRM Statistics Job"): the ERP's figures of each coupled customer, in
 * local currency, written to the integration solution's account statistics row of its account
 * (nav_accountstatistics, linked from account.nav_accountstatisticsid). Only customers whose figures (or
 * credit limit) changed since the last run are written.
 */
export const statisticsMapping = "CUSTOMER STATISTICS";
const statisticsSet = "nav_accountstatisticses";

/** ERP figure -> CRM column (BC table 5367 "CRM Account Statistics"). */
const columns: [keyof StatisticsFigures, string][] = [
  ["balance", "nav_balancelcy"],
  ["outstandingOrders", "nav_outstandingorderslcy"],
  ["shippedNotInvoiced", "nav_shippednotinvoicedlcy"],
  ["outstandingInvoices", "nav_outstandinginvoiceslcy"],
  ["total", "nav_totallcy"],
  ["overdueAmounts", "nav_overdueamountslcy"],
  ["totalSales", "nav_totalsaleslcy"],
  ["invoicedPrepaymentAmount", "nav_invoicedprepaymentamountlcy"],
];

interface StatisticsFigures {
  balance?: number;
  outstandingOrders?: number;
  shippedNotInvoiced?: number;
  outstandingInvoices?: number;
  total?: number;
  overdueAmounts?: number;
  totalSales?: number;
  invoicedPrepaymentAmount?: number;
}

/** The statistics row of a customer, pure: missing figures are 0, as the ERP shows them. */
export function statisticsRow(customer: ErpFields, figures: ErpFields | undefined): Record<string, unknown> {
  const row: Record<string, unknown> = {
    nav_name: String(customer.name ?? customer.id).slice(0, 160),
    nav_customerno: customer.id,
    nav_creditlimitlcy: Number(customer.creditLimit ?? 0),
  };
  for (const [figure, column] of columns) row[column] = Number(figures?.[figure] ?? 0);
  if (typeof figures?.overdueAsOf === "string") row.nav_overdueamountsasof = figures.overdueAsOf;
  return row;
}

export class CustomerStatisticsService {
  private readonly clock: () => Date;

  constructor(
    private readonly init: {
      setups: SetupRepository;
      connector: CrmConnector;
      couplings: CouplingRepository;
      erpRecords: ErpRecordRepository;
      logs: SyncLogRepository;
      clock?: () => Date;
    },
  ) {
    this.clock = init.clock ?? (() => new Date());
  }

  async runJob(company: string, runId: string): Promise<{ written: number; failed: number; log: SyncLogEntry }> {
    requireCompany(company);
    const started = this.clock();
    const stored = await this.init.setups.get(company);
    if (!stored) throw notFound(`No connection is set up for company "${company}".`);
    if (!stored.value.isEnabled) throw conflict("The connection is not enabled, so Dynamics 365 Sales cannot be reached. Enable it first.");
    if (!stored.value.integrationSolutionImported) {
      throw conflict("The integration solution is not imported in Dynamics 365 Sales, so it has no account statistics to write.");
    }
    const client = await this.init.connector.client(stored.value);
    const [customerCouplings, written, figures, customers] = await Promise.all([
      this.init.couplings.load(company, "CUSTOMER"),
      this.init.couplings.load(company, statisticsMapping),
      this.init.erpRecords.changedSince(company, "customerStatistics"),
      this.init.erpRecords.changedSince(company, "customers"),
    ]);
    const byCustomer = new Map(figures.filter((record) => !record.deleted).map((record) => [record.id, record]));
    const customerById = new Map(customers.filter((record) => !record.deleted).map((record) => [record.id, record]));
    const last = new Map(written.map((coupling) => [coupling.erpId, coupling]));
    const counts = emptyCounts();
    const errors: SyncErrorEntry[] = [];
    const rows: Record<string, unknown>[] = [];
    const done: Coupling[] = [];
    const newLinks: { accountId: string; statisticsId: string }[] = [];
    for (const coupling of customerCouplings.filter((candidate) => !candidate.pending)) {
      const customer = customerById.get(coupling.erpId);
      if (!customer) continue;
      const figure = byCustomer.get(coupling.erpId);
      // What was written last: the stamps of the figures and of the customer (its name and credit limit).
      const stamp = `${figure?.modifiedAt ?? "-"}|${customer.modifiedAt}`;
      const previous = last.get(coupling.erpId);
      if (previous?.erpModifiedAt === stamp) {
        counts.unchanged++;
        continue;
      }
      // The statistics row shares its account's id: one row per account, found again after a crash.
      const statisticsId = coupling.crmId.toLowerCase();
      rows.push({ nav_accountstatisticsid: statisticsId, ...statisticsRow(customer.fields, figure?.fields) });
      done.push({ erpId: coupling.erpId, crmId: statisticsId, pending: false, erpModifiedAt: stamp });
      if (!previous) newLinks.push({ accountId: coupling.crmId, statisticsId });
      if (previous) counts.modified++;
      else counts.inserted++;
    }
    try {
      if (rows.length > 0) await client.upsertMultiple(statisticsSet, rows);
      for (const link of newLinks)
        await client.update("accounts", link.accountId, { "nav_accountstatisticsid@odata.bind": `/${statisticsSet}(${link.statisticsId})` });
      if (done.length > 0) await this.init.couplings.save(company, statisticsMapping, done);
    } catch (error) {
      counts.failed += rows.length;
      counts.inserted = 0;
      counts.modified = 0;
      errors.push({ sourceId: "CUSTOMER STATISTICS", reason: error instanceof Error ? error.message : String(error) });
    }
    const log: SyncLogEntry = {
      id: SyncLogRepository.newLogId(started, runId, "toCrm"),
      runId,
      mapping: statisticsMapping,
      direction: "toCrm",
      startedAt: started.toISOString(),
      finishedAt: this.clock().toISOString(),
      ...counts,
      message: counts.failed > 0 ? "The statistics could not be written; see the errors of this run." : "Completed.",
    };
    await this.init.logs.write(company, log, errors);
    return { written: counts.inserted + counts.modified, failed: counts.failed, log };
  }
}
