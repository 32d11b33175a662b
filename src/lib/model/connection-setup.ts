import type { AuthenticationType } from "./authentication-type";

/** A stored secret's address; the setup row keeps this, never the value. */
export interface SecretRef {
  name: string;
  version: string;
}

/** The non-secret fields of a setup, ready to store. */
export interface SetupFields {
  serverAddress: string;
  authenticationType: AuthenticationType;
  userName?: string;
  clientId?: string;
  tenantId?: string;
  redirectUri?: string;
  homeRealmUri?: string;
  certificateThumbprint?: string;
  proxyVersion: number;
}

/** One ERP company's connection to Dynamics 365 Sales, as stored (secrets only as references). */
export interface ConnectionSetup extends SetupFields {
  company: string;
  secrets: {
    password?: SecretRef;
    clientSecret?: SecretRef;
    certificate?: SecretRef;
  };
  isEnabled: boolean;
  disableReason?: string;
  crmVersion?: string;
  /** The CRM systemuserid the connection signs in as (read when enabling); its writes are never echoed back. */
  connectionUserId?: string;
  /**
   * This company's row in the organization's company table (`bcbi_company`), found or made when enabling, when
   * the organization has one: rows of accounts, contacts, products and sales orders are then told apart by
   * company (sync/company-scope.ts).
   */
  crmCompanyId?: string;
  /** ISO code of the CRM base currency, read when enabling. */
  crmBaseCurrencyCode?: string;
  integrationSolutionImported: boolean;
  erpWebUrl?: string;
  connectionUserIsIntegrationUser: boolean;
  salesOrderIntegrationEnabled: boolean;
  /** BC's "Automatically Create Sales Orders": a job creates ERP orders from submitted CRM orders. */
  autoCreateSalesOrders: boolean;
  usersMustMapToCrmUsers: boolean;
  updatedAt: string;
}

/** Dynamics CRM versions the ERP supports: major above 6, but not 7.1. */
export function isSupportedCrmVersion(version: string | undefined): boolean | undefined {
  if (!version) return undefined;
  const [major, minor] = version.split(".").map(Number);
  if (major === undefined || Number.isNaN(major)) return false;
  return major > 6 && !(major === 7 && minor === 1);
}
