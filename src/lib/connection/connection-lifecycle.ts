import * as z from "zod";
import type { Config } from "../config";
import type { DataverseClient } from "../dataverse/dataverse-client";
import type { CallerPrincipal } from "../caller";
import { type FieldError, Refusal, conflict, fieldErrorsFromZod, hiddenCharacters, inputMessages, invalid, unprocessable } from "../errors";
import type { ConnectionSetup } from "../model/connection-setup";
import { isSupportedCrmVersion } from "../model/connection-setup";
import type { ConnectionView } from "../setup/connection-view";
import type { Notice } from "../setup/setup-input";
import type { SetupService } from "../setup/setup-service";
import { requireSetup } from "../model/company";
import type { SetupRepository } from "../storage/setup-repository";
import type { ConnectionTestResult, ConnectionTester } from "./connection-test";
import type { CrmConnector } from "./crm-connector";
import { writeErpWebUrlToCrm } from "./erp-web-url";
import { connectionMessages } from "./messages";
import type { Prompt } from "./prompts";
import { companyRowOf } from "./crm-company";

export const enableInput = z.strictObject({ useDefaultSyncSetup: z.boolean().optional() });
export const disableInput = z.strictObject({
  reason: z
    .string()
    .trim()
    .min(1)
    .max(250)
    .refine((reason) => !hiddenCharacters.test(reason), inputMessages.hiddenCharacters)
    .optional(),
});

/**
 * What enabling and disabling needs of the synchronization setup (sync/sync-setup-service.ts implements it):
 * declared here, so the connection's use cases do not depend on the sync folder.
 */
export interface SyncJobsControl {
  hasSetup(company: string): Promise<boolean>;
  installDefault(company: string, options: { confirm?: boolean }): Promise<{ message: string }>;
  setJobsReady(company: string): Promise<void>;
  setJobsOnHold(company: string): Promise<void>;
  syncSalesOrderJobs(company: string, setup: Pick<ConnectionSetup, "isEnabled" | "salesOrderIntegrationEnabled" | "autoCreateSalesOrders">): Promise<void>;
  /** The stored mappings' CRM filters Dataverse refuses, by field (`mappings.<name>.crmFilter`). */
  crmFilterProblems(company: string, client: DataverseClient): Promise<FieldError[]>;
  /** Gives the rows this company coupled before rows were told apart by company its company id; answers how many. */
  claimCoupledRows(company: string, client: DataverseClient, companyId: string): Promise<number>;
}

export interface LifecycleInit {
  setups: SetupRepository;
  setup: SetupService;
  tester: ConnectionTester;
  connector: CrmConnector;
  syncSetup: SyncJobsControl;
  config: Pick<Config, "INTEGRATION_SOLUTION_NAME" | "ERP_LOCAL_CURRENCY" | "ERP_WEB_URL_DEFAULT">;
}

/** Test, Enable and Disable of a company's connection (BEHAVIOUR §2-§3). */
export class ConnectionLifecycle {
  constructor(private readonly init: LifecycleInit) {}

  async test(company: string, caller?: CallerPrincipal): Promise<ConnectionTestResult> {
    const stored = await this.stored(company);
    return (await this.init.tester.test(stored.value, caller)).result;
  }

  /**
   * Enable: the test must pass; then the CRM version, solution, sales-order flag and base currency are
   * read and stored, and the sync jobs set Ready (or the default sync setup offered as a prompt).
   */
  async enable(company: string, body: unknown, caller?: CallerPrincipal): Promise<ConnectionView & { prompts: Prompt[] }> {
    const input = enableInput.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const stored = await this.stored(company);
    if (stored.value.isEnabled) return { ...(await this.init.setup.read(company)), prompts: [] };

    const { result, session } = await this.init.tester.test(stored.value, caller);
    if (!result.ok || !session) throw unprocessable(result.message, { test: result });
    const crm = await this.readOrganization(session.client);
    // A filter saved while the connection was disabled is tried now: a run would fail on it every time.
    const filterProblems = await this.init.syncSetup.crmFilterProblems(company, session.client);
    if (filterProblems.length > 0) throw new Refusal("unprocessable", connectionMessages.crmFilterRefused, filterProblems, { test: result });
    const lcy = this.init.config.ERP_LOCAL_CURRENCY;
    if (lcy && crm.baseCurrencyCode && lcy !== crm.baseCurrencyCode.toUpperCase()) {
      throw unprocessable(connectionMessages.lcyMismatch(lcy, crm.baseCurrencyCode), { test: result });
    }

    const notices: Notice[] = result.warnings.map((message) => ({ code: "connection-user", message }));
    if (isSupportedCrmVersion(session.crmVersion) === false)
      notices.push({ code: "unsupported-crm-version", message: connectionMessages.unsupportedVersion(session.crmVersion) });
    // Several ERP companies on one organization: each synchronizes its own rows (sync/company-scope.ts).
    const found = await companyRowOf(session.client, company);
    const companyRow = typeof found === "object" ? found : undefined;
    if (companyRow && companyRow.others.length > 0)
      notices.push({ code: "shared-organization", message: connectionMessages.sharedOrganization(companyRow.others) });
    if (found === "forbidden") notices.push({ code: "company-table-forbidden", message: connectionMessages.companyTableForbidden });
    if (!companyRow) {
      const others = (await this.init.setups.list()).filter(
        (other) => other.company !== company && other.isEnabled && sameOrganization(other.serverAddress, stored.value.serverAddress),
      );
      if (others.length > 0)
        notices.push({ code: "shared-organization-unscoped", message: connectionMessages.sharedOrganizationUnscoped(others.map((other) => other.company)) });
    }
    const erpWebUrl = stored.value.erpWebUrl ?? this.init.config.ERP_WEB_URL_DEFAULT;
    if (crm.solutionImported && erpWebUrl) await writeErpWebUrlToCrm(session.client, company, erpWebUrl);

    const { disableReason: _cleared, ...rest } = stored.value;
    const enabled: ConnectionSetup = {
      ...rest,
      isEnabled: true,
      crmVersion: session.crmVersion,
      connectionUserId: session.userId,
      ...(companyRow && { crmCompanyId: companyRow.id }),
      integrationSolutionImported: crm.solutionImported,
      salesOrderIntegrationEnabled: crm.solutionImported && crm.salesOrderIntegration,
      ...(crm.baseCurrencyCode && { crmBaseCurrencyCode: crm.baseCurrencyCode }),
      ...(erpWebUrl && { erpWebUrl }),
      updatedAt: new Date().toISOString(),
    };
    await this.saveChange(enabled, stored.etag);

    const prompts = [...result.prompts];
    if (await this.init.syncSetup.hasSetup(company)) {
      await this.init.syncSetup.setJobsReady(company);
      // Asked for the default setup while one exists: say what happened instead of doing nothing silently.
      if (input.data.useDefaultSyncSetup === true) {
        notices.push({ code: "sync-setup-kept", message: connectionMessages.syncSetupKept });
        prompts.push({
          id: "default-sync-setup",
          message: connectionMessages.replaceSyncSetupQuestion,
          action: { method: "POST", href: `/api/companies/${company}/sync/default-setup`, body: { confirm: true } },
        });
      }
    } else if (input.data.useDefaultSyncSetup === true) {
      const installed = await this.init.syncSetup.installDefault(company, { confirm: true });
      notices.push({ code: "default-sync-setup", message: installed.message });
    } else if (input.data.useDefaultSyncSetup === undefined) {
      prompts.push({
        id: "default-sync-setup",
        message: connectionMessages.defaultSyncSetupQuestion,
        action: { method: "POST", href: `/api/companies/${company}/sync/default-setup`, body: { confirm: true } },
      });
    }
    await this.init.syncSetup.syncSalesOrderJobs(company, enabled);
    if (companyRow) await this.init.syncSetup.claimCoupledRows(company, session.client, companyRow.id);
    const view = await this.init.setup.read(company);
    return { ...view, notices: [...view.notices, ...notices], prompts };
  }

  /** Disable: CRM facts are cleared, every sync job goes On Hold; the settings are kept. */
  async disable(company: string, body: unknown): Promise<ConnectionView> {
    const input = disableInput.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const stored = await this.stored(company);
    if (stored.value.isEnabled) {
      const { crmVersion: _version, crmBaseCurrencyCode: _currency, connectionUserId: _user, crmCompanyId: _company, ...rest } = stored.value;
      await this.saveChange(
        {
          ...rest,
          isEnabled: false,
          integrationSolutionImported: false,
          salesOrderIntegrationEnabled: false,
          disableReason: input.data.reason ?? connectionMessages.disabledByUser,
          updatedAt: new Date().toISOString(),
        },
        stored.etag,
      );
    }
    await this.init.syncSetup.setJobsOnHold(company);
    this.init.connector.forget(company);
    return this.init.setup.read(company);
  }

  /**
   * Enable and disable are not conditional requests: a concurrent change of the setup (another enable or disable)
   * is a 409, not the 412 of a stale If-Match the caller never sent.
   */
  private async saveChange(setup: ConnectionSetup, etag: string): Promise<void> {
    try {
      await this.init.setup.saveRow(setup, etag);
    } catch (error) {
      if (error instanceof Refusal && error.kind === "stale") throw conflict(connectionMessages.changedMeanwhile);
      throw error;
    }
  }

  private async stored(company: string) {
    return requireSetup(this.init.setups, company);
  }

  private async readOrganization(client: DataverseClient) {
    const [organization] = await client.retrieveMultiple<{ organizationid: string; issopintegrationenabled?: boolean; _basecurrencyid_value?: string }>(
      "organizations",
      { select: ["organizationid", "issopintegrationenabled", "_basecurrencyid_value"], top: 1 },
    );
    const solutionName = this.init.config.INTEGRATION_SOLUTION_NAME.replace(/'/g, "''");
    const [solution] = await client.retrieveMultiple("solutions", { select: ["solutionid", "version"], filter: `uniquename eq '${solutionName}'`, top: 1 });
    const currency = organization?._basecurrencyid_value
      ? await client.retrieve<{ isocurrencycode?: string }>("transactioncurrencies", organization._basecurrencyid_value, ["isocurrencycode"])
      : undefined;
    return {
      organizationId: organization?.organizationid,
      salesOrderIntegration: organization?.issopintegrationenabled === true,
      solutionImported: solution !== undefined,
      baseCurrencyCode: currency?.isocurrencycode,
    };
  }
}

/** Two Sales URLs of one organization (stored as scheme and host). */
function sameOrganization(a: string, b: string): boolean {
  return a.toLowerCase().replace(/\/+$/, "") === b.toLowerCase().replace(/\/+$/, "");
}
