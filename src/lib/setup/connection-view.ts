import type { SecretStoreDescription } from "../secrets/secret-store";
import { type ActiveScheduledSyncJobs, type JobSummary, countedStatuses, describeActiveJobs } from "../model/active-jobs";
import { buildConnectionString } from "./connection-string";
import { type ConnectionSetup, isSupportedCrmVersion } from "../model/connection-setup";
import type { Notice } from "./setup-input";
import { domainOf } from "./user-name";

/** What GET/PUT /connection answer (API.md "View"): every field, no secret value. */
export interface ConnectionView {
  company: string;
  serverAddress: string;
  authenticationType: ConnectionSetup["authenticationType"];
  userName: string | null;
  domain: string | null;
  clientId: string | null;
  tenantId: string | null;
  redirectUri: string | null;
  homeRealmUri: string | null;
  certificateThumbprint: string | null;
  proxyVersion: number;
  connectionString: string;
  hasPassword: boolean;
  hasClientSecret: boolean;
  hasCertificate: boolean;
  isEnabled: boolean;
  disableReason: string | null;
  crmVersion: string | null;
  crmVersionSupported: boolean | null;
  crmBaseCurrencyCode: string | null;
  integrationSolutionImported: boolean;
  erpWebUrl: string | null;
  connectionUserIsIntegrationUser: boolean;
  salesOrderIntegrationEnabled: boolean;
  autoCreateSalesOrders: boolean;
  usersMustMapToCrmUsers: boolean;
  activeScheduledSyncJobs: ActiveScheduledSyncJobs;
  secretStore: SecretStoreDescription;
  notices: Notice[];
  updatedAt: string;
  etag: string;
}

export interface ViewContext {
  etag: string;
  secretStore: SecretStoreDescription;
  jobs: JobSummary[];
  notices?: Notice[];
}

export function toConnectionView(setup: ConnectionSetup, context: ViewContext): ConnectionView {
  const domain = domainOf(setup.userName);
  return {
    company: setup.company,
    serverAddress: setup.serverAddress,
    authenticationType: setup.authenticationType,
    userName: setup.userName ?? null,
    domain: domain ?? null,
    clientId: setup.clientId ?? null,
    tenantId: setup.tenantId ?? null,
    redirectUri: setup.redirectUri ?? null,
    homeRealmUri: setup.homeRealmUri ?? null,
    certificateThumbprint: setup.certificateThumbprint ?? null,
    proxyVersion: setup.proxyVersion,
    connectionString: buildConnectionString({ ...setup, domain, thumbprint: setup.certificateThumbprint }),
    hasPassword: setup.secrets.password !== undefined,
    hasClientSecret: setup.secrets.clientSecret !== undefined,
    hasCertificate: setup.secrets.certificate !== undefined,
    isEnabled: setup.isEnabled,
    disableReason: setup.disableReason ?? null,
    crmVersion: setup.crmVersion ?? null,
    crmVersionSupported: isSupportedCrmVersion(setup.crmVersion) ?? null,
    crmBaseCurrencyCode: setup.crmBaseCurrencyCode ?? null,
    integrationSolutionImported: setup.integrationSolutionImported,
    erpWebUrl: setup.erpWebUrl ?? null,
    connectionUserIsIntegrationUser: setup.connectionUserIsIntegrationUser,
    salesOrderIntegrationEnabled: setup.salesOrderIntegrationEnabled,
    autoCreateSalesOrders: setup.autoCreateSalesOrders,
    usersMustMapToCrmUsers: setup.usersMustMapToCrmUsers,
    activeScheduledSyncJobs: describeActiveJobs(countedStatuses(context.jobs, setup.integrationSolutionImported), setup.isEnabled),
    secretStore: context.secretStore,
    notices: context.notices ?? [],
    updatedAt: setup.updatedAt,
    etag: context.etag,
  };
}
