import type { CrmConnector } from "../connection/crm-connector";
import type { ErpFields } from "../model/erp-schemas";
import { conflict } from "../errors";
import { requireSetup, companyMessages } from "../model/company";
import type { CouplingRepository } from "../storage/coupling-repository";
import type { ErpRecordRepository } from "../storage/erp-record-repository";
import type { SetupRepository } from "../storage/setup-repository";
import { type SyncErrorEntry, type SyncLogEntry, SyncLogRepository } from "../storage/sync-log-repository";
import type { Coupling } from "../model/coupling";
import { emptyCounts } from "../model/sync-plan";

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
    const started = this.clock();
    const stored = await requireSetup(this.init.setups, company);
    if (!stored.value.isEnabled) throw conflict(companyMessages.notEnabled);
    if (!stored.value.integrationSolutionImported) {
      throw conflict("The integration solution is not imported in Dynamics 365 Sales, so it has no account statistics to write.");
    }
    const client = await this.init.connector.client(stored.value);
    const [customerCouplings, previousRuns, figures, customers] = await Promise.all([
      this.init.couplings.load(company, "CUSTOMER"),
      this.init.couplings.load(company, statisticsMapping),
      this.init.erpRecords.changedSince(company, "customerStatistics"),
      this.init.erpRecords.changedSince(company, "customers"),
    ]);
    const byCustomer = new Map(figures.filter((record) => !record.deleted).map((record) => [record.id, record]));
    const customerById = new Map(customers.filter((record) => !record.deleted).map((record) => [record.id, record]));
    const last = new Map(previousRuns.map((coupling) => [coupling.erpId, coupling]));
    const counts = emptyCounts();
    const errors: SyncErrorEntry[] = [];
    const pending: { erpId: string; accountId: string; row: Record<string, unknown>; stamp: string; link: boolean; update: boolean }[] = [];
    for (const coupling of customerCouplings.filter((candidate) => !candidate.pending)) {
      const customer = customerById.get(coupling.erpId);
      if (!customer) continue;
      const figure = byCustomer.get(coupling.erpId);
      // What was written last: the stamps of the figures and of the customer (its name and credit limit).
      const stamp = `${figure?.modifiedAt ?? "-"}|${customer.modifiedAt}`;
      // The statistics row shares its account's id: one row per account, found again after a crash.
      const accountId = coupling.crmId.toLowerCase();
      const previous = last.get(coupling.erpId);
      if (previous?.erpModifiedAt === stamp && previous.crmId === accountId) {
        counts.unchanged++;
        continue;
      }
      // A new coupling (or one to another account since) links its account to the statistics row.
      pending.push({
        erpId: coupling.erpId,
        accountId,
        row: { nav_accountstatisticsid: accountId, ...statisticsRow(customer.fields, figure?.fields) },
        stamp,
        link: previous?.crmId !== accountId,
        update: previous !== undefined,
      });
    }
    const written = new Set<string>();
    try {
      if (pending.length > 0)
        await client.upsertMultiple(
          statisticsSet,
          pending.map((entry) => entry.row),
        );
      for (const entry of pending) written.add(entry.erpId);
    } catch {
      // One customer's row refused: each is written on its own, so the others still are.
      for (const entry of pending) {
        try {
          await client.upsert(statisticsSet, entry.accountId, entry.row);
          written.add(entry.erpId);
        } catch (error) {
          errors.push({ sourceId: entry.erpId, destinationId: entry.accountId, reason: error instanceof Error ? error.message : String(error) });
        }
      }
    }
    const done: Coupling[] = [];
    for (const entry of pending.filter((candidate) => written.has(candidate.erpId))) {
      try {
        if (entry.link) await client.update("accounts", entry.accountId, { "nav_accountstatisticsid@odata.bind": `/${statisticsSet}(${entry.accountId})` });
        done.push({ erpId: entry.erpId, crmId: entry.accountId, pending: false, erpModifiedAt: entry.stamp });
        if (entry.update) counts.modified++;
        else counts.inserted++;
      } catch (error) {
        errors.push({ sourceId: entry.erpId, destinationId: entry.accountId, reason: error instanceof Error ? error.message : String(error) });
      }
    }
    counts.failed = pending.length - done.length;
    if (done.length > 0) await this.init.couplings.save(company, statisticsMapping, done);
    const log: SyncLogEntry = {
      id: SyncLogRepository.newLogId(started, runId, "toCrm"),
      runId,
      mapping: statisticsMapping,
      direction: "toCrm",
      startedAt: started.toISOString(),
      finishedAt: this.clock().toISOString(),
      ...counts,
      message: counts.failed > 0 ? `${counts.failed} customer(s) failed; see the errors of this run.` : "Completed.",
    };
    await this.init.logs.write(company, log, errors);
    return { written: counts.inserted + counts.modified, failed: counts.failed, log };
  }
}
