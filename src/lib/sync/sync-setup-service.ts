import { type ActiveScheduledSyncJobs, countedStatuses, describeActiveJobs } from "../model/active-jobs";
import * as z from "zod";
import { randomUUID } from "node:crypto";
import { type FieldError, conflict, invalid, fieldErrorsFromZod } from "../errors";
import type { SetupRepository } from "../storage/setup-repository";
import type { CouplingRepository } from "../storage/coupling-repository";
import type { DataverseClient } from "../dataverse/dataverse-client";
import { claimCoupledRows } from "./company-rows";
import { crmFilterProblem } from "./sync-admin";
import type { SyncRepository } from "../storage/sync-repository";
import { requireSetup } from "../model/company";
import { type MappingDefinition, defaultMappings, jobDescription, statisticsJobId } from "./default-mappings";
import type { JobEntry, StoredMapping } from "../model/job-entry";
import type { ConnectionSetup } from "../model/connection-setup";

/** The job entries of sales order integration (BC's "Sales Order Status" and "Auto Create Sales Orders" jobs). */
export const salesOrderJobIds = { status: "SALES ORDER STATUS", autoCreate: "AUTO CREATE SALES ORDERS" } as const;

function salesOrderJob(company: string, id: string, now: string): JobEntry {
  const status = id === salesOrderJobIds.status;
  return {
    company,
    id,
    kind: status ? "orderStatus" : "autoCreateOrders",
    description: status
      ? "Sales Order Status - Dynamics 365 for Sales synchronization job."
      : "Automatically create sales orders from sales orders that are submitted in Dynamics 365 for Sales.",
    status: "Ready",
    recurring: true,
    minutesBetweenRuns: status ? 5 : 30,
    maxAttempts: 10,
    rerunDelaySeconds: 30,
    inactivityTimeoutMinutes: 0,
    attempts: 0,
    nextRunAt: now,
  };
}

export const syncSetupMessages = {
  confirmReplace:
    "This will delete all existing integration table mappings and Dynamics 365 for Sales synchronization jobs and install the default integration " +
    'table mappings and jobs for Dynamics 365 for Sales synchronization. Are you sure you want to continue? Send { "confirm": true } to go ahead.',
  completed: "The default setup for Dynamics 365 for Sales synchronization has completed successfully.",
  inProgress: "The default synchronization setup is being installed for this company by another request. Try again when it has finished.",
} as const;

export const defaultSetupInput = z.strictObject({ confirm: z.boolean().optional() });

/** Default synchronization setup (BEHAVIOUR §5) and the job controls used by enable/disable. */
export class SyncSetupService {
  constructor(private readonly init: { sync: SyncRepository; setups: SetupRepository; couplings: CouplingRepository; clock?: () => Date }) {}

  /** The stored mappings' CRM filters that Dataverse refuses (saved while the connection was disabled), by field. */
  async crmFilterProblems(company: string, client: DataverseClient): Promise<FieldError[]> {
    const problems: FieldError[] = [];
    for (const { value } of await this.init.sync.mappings(company)) {
      const definition = JSON.parse(value.definitionJson) as MappingDefinition;
      if (!definition.crmFilter) continue;
      const problem = await crmFilterProblem(client, definition, definition.crmFilter, `mappings.${value.name}.crmFilter`);
      if (problem) problems.push(problem);
    }
    return problems;
  }

  /** The rows this company coupled before rows were told apart by company get its company id (company-rows.ts). */
  claimCoupledRows(company: string, client: DataverseClient, companyId: string): Promise<number> {
    return claimCoupledRows(this.init, client, company, companyId);
  }

  /** "Use Default Synchronization Setup": every mapping and job entry anew; answers the new "X of Y". */
  async installDefault(
    company: string,
    input: unknown = {},
  ): Promise<{ message: string; mappings: number; jobs: JobEntry[]; activeScheduledSyncJobs: ActiveScheduledSyncJobs }> {
    const parsed = defaultSetupInput.safeParse(input ?? {});
    if (!parsed.success) throw invalid(fieldErrorsFromZod(parsed.error));
    const options = parsed.data;
    const setup = await requireSetup(this.init.setups, company);
    // Two installs at once would delete each other's rows: one goes ahead, the others are told to wait.
    const owner = randomUUID();
    if (!(await this.init.sync.tryLock(company, "default-setup", owner, 60_000))) throw conflict(syncSetupMessages.inProgress);
    try {
      const installed = await this.install(company, setup.value.isEnabled, options);
      const statuses = countedStatuses(installed.jobs, setup.value.integrationSolutionImported, this.init.clock?.() ?? new Date());
      return { ...installed, activeScheduledSyncJobs: describeActiveJobs(statuses, setup.value.isEnabled) };
    } finally {
      await this.init.sync.unlock(company, "default-setup", owner);
    }
  }

  private async install(company: string, isEnabled: boolean, options: { confirm?: boolean }): Promise<{ message: string; mappings: number; jobs: JobEntry[] }> {
    if (!options.confirm && (await this.init.sync.hasMappings(company))) throw conflict(syncSetupMessages.confirmReplace);
    const now = (this.init.clock?.() ?? new Date()).toISOString();
    const status = isEnabled ? "Ready" : "On Hold";
    const mappings: StoredMapping[] = defaultMappings.map((definition) => ({ company, name: definition.name, definitionJson: JSON.stringify(definition) }));
    const jobs: JobEntry[] = [
      ...defaultMappings.map((definition): JobEntry => ({
        company,
        id: definition.name,
        kind: "mapping",
        description: jobDescription(definition.name),
        status,
        recurring: true,
        minutesBetweenRuns: definition.minutesBetweenRuns,
        maxAttempts: 10,
        rerunDelaySeconds: 30,
        // BC's entries sleep after 720 idle minutes; here an idle run costs one request per direction, and
        // sleeping would hold CRM-side changes back for hours, so entries start awake (admins may set it).
        inactivityTimeoutMinutes: 0,
        attempts: 0,
        nextRunAt: now,
      })),
      {
        company,
        id: statisticsJobId,
        kind: "statistics",
        description: "Customer Statistics - Dynamics 365 for Sales synchronization job.",
        status: "On Hold",
        recurring: true,
        minutesBetweenRuns: 30,
        maxAttempts: 2,
        rerunDelaySeconds: 30,
        attempts: 0,
        nextRunAt: now,
      },
    ];
    const setup = await this.init.setups.get(company);
    if (setup?.value.isEnabled && setup.value.salesOrderIntegrationEnabled) {
      jobs.push(salesOrderJob(company, salesOrderJobIds.status, now));
      if (setup.value.autoCreateSalesOrders) jobs.push(salesOrderJob(company, salesOrderJobIds.autoCreate, now));
    }
    const running = await this.runningNow(company);
    await this.init.sync.replaceSetup(
      company,
      mappings.map((mapping) => ({ ...mapping, ...running.mappings.get(mapping.name) })),
      jobs.map((job): JobEntry => {
        // A running entry keeps its lease; it takes the new status when its run ends, as with Hold or Ready.
        const lease = running.jobs.get(job.id);
        return lease ? { ...job, ...lease, status: "In Process", requestedStatus: job.status === "Ready" ? "Ready" : "On Hold" } : job;
      }),
    );
    return { message: syncSetupMessages.completed, mappings: mappings.length, jobs };
  }

  /** The leases of runs going on now: a new setup carries them over, so those runs keep their hold. */
  private async runningNow(company: string) {
    const now = (this.init.clock?.() ?? new Date()).toISOString();
    const jobs = new Map<string, Pick<JobEntry, "leaseOwner" | "leaseExpiresAt" | "progressJson">>();
    for (const { value } of await this.init.sync.jobs(company)) {
      if (value.status === "In Process" && value.leaseOwner && (value.leaseExpiresAt ?? "") > now)
        jobs.set(value.id, {
          leaseOwner: value.leaseOwner,
          leaseExpiresAt: value.leaseExpiresAt!,
          ...(value.progressJson && { progressJson: value.progressJson }),
        });
    }
    const mappings = new Map<string, Pick<StoredMapping, "runLeaseOwner" | "runLeaseExpiresAt">>();
    for (const { value } of await this.init.sync.mappings(company)) {
      if (value.runLeaseOwner && (value.runLeaseExpiresAt ?? "") > now)
        mappings.set(value.name, { runLeaseOwner: value.runLeaseOwner, runLeaseExpiresAt: value.runLeaseExpiresAt! });
    }
    return { jobs, mappings };
  }

  hasSetup(company: string): Promise<boolean> {
    return this.init.sync.hasMappings(company);
  }

  /** On enable: the mapping and sales order jobs become Ready (the statistics job keeps its state). */
  setJobsReady(company: string): Promise<void> {
    return this.init.sync.setStatuses(company, (job) => (job.kind === "statistics" ? undefined : "Ready"));
  }

  /**
   * The sales order job entries follow the settings, as the ERP's do: SALES ORDER STATUS exists while sales
   * order integration is enabled, AUTO CREATE SALES ORDERS while Automatically Create Sales Orders is on too.
   */
  async syncSalesOrderJobs(
    company: string,
    setup: Pick<ConnectionSetup, "isEnabled" | "salesOrderIntegrationEnabled" | "autoCreateSalesOrders">,
  ): Promise<void> {
    const integration = setup.isEnabled && setup.salesOrderIntegrationEnabled;
    const wanted = new Set<string>([
      ...(integration ? [salesOrderJobIds.status] : []),
      ...(integration && setup.autoCreateSalesOrders ? [salesOrderJobIds.autoCreate] : []),
    ]);
    const existing = new Set((await this.init.sync.jobs(company)).map(({ value }) => value.id));
    for (const id of Object.values(salesOrderJobIds)) {
      if (!wanted.has(id) && existing.has(id)) await this.init.sync.removeJob(company, id);
      if (wanted.has(id) && !existing.has(id)) await this.init.sync.addJob(salesOrderJob(company, id, (this.init.clock?.() ?? new Date()).toISOString()));
    }
  }

  /** On disable: every job On Hold. */
  setJobsOnHold(company: string): Promise<void> {
    return this.init.sync.setStatuses(company, () => "On Hold");
  }
}
