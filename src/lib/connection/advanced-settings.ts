import { platformAuthenticationEnabled } from "../caller";
import * as z from "zod";
import type { Config } from "../config";
import type { DataverseClient } from "../dataverse/dataverse-client";
import { conflict, fieldErrorsFromZod, invalid, stale } from "../errors";
import type { ConnectionSetup } from "../model/connection-setup";
import type { ConnectionView } from "../setup/connection-view";
import type { Notice } from "../setup/setup-input";
import type { Preconditions, SetupService } from "../setup/setup-service";
import { requireSetup, companyMessages } from "../model/company";
import type { SetupRepository } from "../storage/setup-repository";
import type { CrmConnector } from "./crm-connector";
import { writeErpWebUrlToCrm } from "./erp-web-url";
import { connectionMessages } from "./messages";

export const settingsInput = z
  .strictObject({
    erpWebUrl: z
      .url({ protocol: /^https?$/, error: "must be an absolute http(s) URL" })
      .max(2048)
      .nullable()
      .optional(),
    connectionUserIsIntegrationUser: z.boolean().optional(),
    salesOrderIntegrationEnabled: z.boolean().optional(),
    autoCreateSalesOrders: z.boolean().optional(),
    usersMustMapToCrmUsers: z.boolean().optional(),
  })
  .refine((value) => Object.keys(value).length > 0, "name at least one setting to change");
export type SettingsInput = z.infer<typeof settingsInput>;

/** The advanced settings of BEHAVIOUR §4: some are written to CRM, all are kept in the setup row. */
export class AdvancedSettings {
  constructor(
    private readonly init: {
      setups: SetupRepository;
      setup: SetupService;
      connector: CrmConnector;
      config: Pick<Config, "ERP_WEB_URL_DEFAULT" | "CALLER_TOKEN_TENANT_ID" | "CALLER_TOKEN_AUDIENCE">;
      /** Adds or removes the sales order job entries to match the saved settings. */
      salesOrderJobs?: (company: string, setup: ConnectionSetup) => Promise<void>;
    },
  ) {}

  async change(company: string, body: unknown, preconditions: Preconditions = {}): Promise<ConnectionView> {
    const input = settingsInput.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const changes = input.data;
    const stored = await this.stored(company, preconditions);
    const setup = stored.value;
    const notices: Notice[] = [];
    const needsCrm = changes.connectionUserIsIntegrationUser !== undefined || changes.salesOrderIntegrationEnabled !== undefined;
    if (needsCrm && !setup.isEnabled) throw conflict(connectionMessages.notEnabled);
    // Every rule is checked before anything is written to Dynamics 365, so a refused change leaves CRM as it was.
    const salesOrderIntegration = changes.salesOrderIntegrationEnabled ?? setup.salesOrderIntegrationEnabled;
    if (changes.autoCreateSalesOrders && !salesOrderIntegration) throw conflict(connectionMessages.autoCreateNeedsIntegration);
    if (changes.usersMustMapToCrmUsers) {
      // Mapping needs to know who calls: without the platform's authentication nobody can be identified.
      const identified = platformAuthenticationEnabled() || Boolean(this.init.config.CALLER_TOKEN_TENANT_ID && this.init.config.CALLER_TOKEN_AUDIENCE);
      if (!identified) throw invalid([{ path: "usersMustMapToCrmUsers", message: connectionMessages.usersMustMapNeedsAuthentication }]);
    }
    let client: DataverseClient | undefined;
    const crm = async () => (client ??= await this.init.connector.client(setup));

    const next: ConnectionSetup = { ...setup, updatedAt: new Date().toISOString() };
    if (changes.salesOrderIntegrationEnabled !== undefined && changes.salesOrderIntegrationEnabled !== setup.salesOrderIntegrationEnabled) {
      await this.setSalesOrderIntegration(await crm(), setup, changes.salesOrderIntegrationEnabled);
      next.salesOrderIntegrationEnabled = changes.salesOrderIntegrationEnabled;
      notices.push({
        code: "sales-order-integration",
        message: changes.salesOrderIntegrationEnabled ? connectionMessages.salesOrderIntegrationEnabled : connectionMessages.salesOrderIntegrationDisabled,
      });
    }
    if (next.salesOrderIntegrationEnabled === false && setup.autoCreateSalesOrders) {
      next.autoCreateSalesOrders = false;
      notices.push({ code: "auto-create-sales-orders", message: connectionMessages.autoCreateSalesOrdersOff });
    }
    if (changes.autoCreateSalesOrders !== undefined) {
      if (changes.autoCreateSalesOrders && !next.salesOrderIntegrationEnabled) throw conflict(connectionMessages.autoCreateNeedsIntegration);
      next.autoCreateSalesOrders = changes.autoCreateSalesOrders;
      notices.push({
        code: "auto-create-sales-orders",
        message: changes.autoCreateSalesOrders ? connectionMessages.autoCreateSalesOrdersOn : connectionMessages.autoCreateSalesOrdersOff,
      });
    }
    if (changes.connectionUserIsIntegrationUser !== undefined) {
      const client = await crm();
      const { UserId } = await client.whoAmI();
      await client.update("systemusers", UserId, { isintegrationuser: changes.connectionUserIsIntegrationUser });
      next.connectionUserIsIntegrationUser = changes.connectionUserIsIntegrationUser;
      const user = setup.userName ?? setup.clientId ?? "The connection user";
      notices.push({
        code: "integration-user",
        message: changes.connectionUserIsIntegrationUser ? connectionMessages.integrationUserSet(user) : connectionMessages.integrationUserCleared(user),
      });
    }
    if (changes.erpWebUrl !== undefined) {
      if (changes.erpWebUrl === null) delete next.erpWebUrl;
      else next.erpWebUrl = changes.erpWebUrl;
      notices.push(await this.publishErpWebUrl(setup, next.erpWebUrl, crm));
    }
    if (changes.usersMustMapToCrmUsers !== undefined) next.usersMustMapToCrmUsers = changes.usersMustMapToCrmUsers;

    const etag = await this.init.setup.saveRow(next, stored.etag);
    if (changes.salesOrderIntegrationEnabled !== undefined || changes.autoCreateSalesOrders !== undefined) await this.init.salesOrderJobs?.(company, next);
    return this.init.setup.view({ value: next, etag }, await this.init.setup.jobs(company), notices);
  }

  /** Restores the default ERP web client URL (ERP_WEB_URL_DEFAULT) here and in CRM. */
  async resetErpWebUrl(company: string, preconditions: Preconditions = {}): Promise<ConnectionView & { message: string }> {
    const stored = await this.stored(company, preconditions);
    const next: ConnectionSetup = { ...stored.value, updatedAt: new Date().toISOString() };
    const defaultUrl = this.init.config.ERP_WEB_URL_DEFAULT;
    if (defaultUrl) next.erpWebUrl = defaultUrl;
    else delete next.erpWebUrl;
    let client: DataverseClient | undefined;
    const notice = await this.publishErpWebUrl(stored.value, next.erpWebUrl, async () => (client ??= await this.init.connector.client(stored.value)));
    const etag = await this.init.setup.saveRow(next, stored.etag);
    const message = defaultUrl ? connectionMessages.erpWebUrlReset : connectionMessages.erpWebUrlNoDefault;
    const view = this.init.setup.view({ value: next, etag }, await this.init.setup.jobs(company), notice.code === "erp-web-url-pending" ? [notice] : []);
    return { ...view, message };
  }

  private async publishErpWebUrl(setup: ConnectionSetup, url: string | undefined, crm: () => Promise<DataverseClient>): Promise<Notice> {
    if (setup.isEnabled && setup.integrationSolutionImported) {
      await writeErpWebUrlToCrm(await crm(), setup.company, url);
      return { code: "erp-web-url-written", message: "The ERP web client URL was written to Dynamics 365 Sales." };
    }
    return { code: "erp-web-url-pending", message: connectionMessages.erpWebUrlPending };
  }

  /** Needs the solution; cannot be switched off while a CRM sales order is Submitted (statecode 1). */
  private async setSalesOrderIntegration(client: DataverseClient, setup: ConnectionSetup, enabled: boolean): Promise<void> {
    if (!setup.integrationSolutionImported) throw conflict(connectionMessages.solutionRequired);
    if (!enabled) {
      const submitted = await client.retrieveMultiple("salesorders", { select: ["salesorderid"], filter: "statecode eq 1", top: 1 });
      if (submitted.length > 0) throw conflict(connectionMessages.submittedOrderBlocksDisable);
    }
    const { OrganizationId } = await client.whoAmI();
    await client.update("organizations", OrganizationId, { issopintegrationenabled: enabled });
  }

  private async stored(company: string, { ifMatch }: Preconditions) {
    const stored = await requireSetup(this.init.setups, company);
    if (ifMatch !== undefined && ifMatch !== "*" && ifMatch !== stored.etag) {
      throw stale(companyMessages.staleSetup);
    }
    return stored;
  }
}
