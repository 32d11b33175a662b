import type { SecretRef } from "../secrets/secret-store";
import type { SetupFields } from "./setup-input";

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

export const companySlug = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Dynamics CRM versions the ERP supports: major above 6, but not 7.1. */
export function isSupportedCrmVersion(version: string | undefined): boolean | undefined {
  if (!version) return undefined;
  const [major, minor] = version.split(".").map(Number);
  if (major === undefined || Number.isNaN(major)) return false;
  return major > 6 && !(major === 7 && minor === 1);
}
