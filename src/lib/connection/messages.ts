/**
 * Texts of Test Connection, Enable/Disable and the advanced settings, after the ERP's connection setup
 * (table 5330, codeunit 5330); see ../shared/spec/BEHAVIOUR.md §2-§4.
 */
export const connectionMessages = {
  userCredentialsRequired: "A Dynamics 365 for Sales URL, user name and password are required to enable a connection.",
  applicationCredentialsRequired: "A Dynamics 365 for Sales URL, client ID and client secret (or certificate) are required to enable a connection.",
  testSucceeded: "The connection test was successful. The settings are valid.",
  testFailed: (reason: string) => `The connection setup cannot be validated. Verify the settings and try again. Detailed error description: ${reason}`,
  usersMustMapUnmapped: (erpUser: string) =>
    `However, because the ERP Users Must Map to Dynamics 365 for Sales Users setting is enabled, Dynamics 365 for Sales integration is not enabled for ` +
    `${erpUser}.`,
  connectionUserDisabled: (user: string) => `The connection user ${user} is disabled in Dynamics 365 Sales. Enable the user or use another one.`,
  connectionUserUnlicensed: (user: string) => `The connection user ${user} is not licensed for Dynamics 365 Sales. Assign a license or use another user.`,
  connectionUserHasNoRoles: (user: string) =>
    `The connection user ${user} has no security roles in Dynamics 365 Sales. Assign the integration roles to the user.`,
  connectionUserIsAdministrator: (user: string) =>
    `The connection user ${user} has the System Administrator role. Use a dedicated integration user that holds only the roles the integration needs.`,
  secretsNotInKeyVault:
    "The credentials are kept in the local development secret store (encrypted with AES-256-GCM), not in Azure Key Vault. Set KEY_VAULT_URL and save " +
    "the setup again to keep them in Key Vault.",
  defaultSyncSetupQuestion:
    "The synchronization is not set up. Do you want to use the default synchronization setup? It creates the default integration table mappings and " +
    "synchronization jobs.",
  syncSetupKept: "A synchronization setup exists already, so it was kept and its jobs are Ready again; the default setup was not installed over it.",
  replaceSyncSetupQuestion:
    "Do you want to replace the existing synchronization setup with the default one? This deletes the current integration table mappings and jobs.",
  lcyMismatch: (lcy: string, iso: string) => `LCY Code ${lcy} does not match ISO Currency Code ${iso} of the CRM base currency.`,
  unsupportedVersion: (version: string) => `Dynamics 365 Sales version ${version} is not supported by the integration; some features may not work.`,
  disabledByUser: "The connection was disabled by a user.",
  notEnabled: "The connection is not enabled. Enable it before you change this setting.",
  solutionRequired: "The integration solution is not imported in Dynamics 365 Sales, so sales order integration cannot be used.",
  salesOrderIntegrationEnabled: "Sales Order Integration with Dynamics 365 for Sales is enabled.",
  salesOrderIntegrationDisabled: "Sales Order Integration with Dynamics 365 for Sales is disabled.",
  autoCreateNeedsIntegration:
    "Sales orders can be created automatically only while sales order integration with Dynamics 365 for Sales is enabled. Enable it first.",
  autoCreateSalesOrdersOn: "Sales orders submitted in Dynamics 365 for Sales are now created in the ERP automatically (the AUTO CREATE SALES ORDERS job).",
  autoCreateSalesOrdersOff: "Sales orders submitted in Dynamics 365 for Sales are no longer created in the ERP automatically.",
  submittedOrderBlocksDisable: "You cannot disable Sales Order Integration with Dynamics 365 for Sales when a CRM sales order has the Submitted status.",
  erpWebUrlReset: "The ERP Web Client URL has been reset to the default value.",
  erpWebUrlNoDefault: "No default ERP web client URL is configured (ERP_WEB_URL_DEFAULT), so the URL was cleared.",
  erpWebUrlPending:
    "The ERP web client URL is saved; it is written to Dynamics 365 Sales when the connection is enabled with the integration solution imported.",
  integrationUserSet: (user: string) => `${user} is now marked as an integration user in Dynamics 365 Sales.`,
  integrationUserCleared: (user: string) => `${user} is no longer marked as an integration user in Dynamics 365 Sales.`,
  usersMustMapNeedsAuthentication:
    "Users can be required to map to Dynamics 365 Sales users only when the app knows who calls: turn on App Service authentication " +
    "(enableAppServiceAuthentication in the Bicep parameters), or set CALLER_TOKEN_TENANT_ID and CALLER_TOKEN_AUDIENCE " +
    "so the app validates the users' Entra ID tokens itself.",
  /** What to do about a sign-in an unattended service can never complete (interactive challenges). */
  signInNeedsInteraction: {
    AADSTS50076:
      "The connection user must complete multi-factor authentication, which a scheduled service cannot do. Exclude the integration account from MFA, " +
      "or connect as an application user (AuthType=ClientSecret or Certificate).",
    AADSTS53003:
      "A Conditional Access policy blocks this sign-in. Ask your administrator to exclude the integration account from the policy, or connect as an " +
      "application user (AuthType=ClientSecret or Certificate).",
    AADSTS50158:
      "The account's identity provider requires an extra challenge (federated sign-in) that a scheduled service cannot answer. Use a cloud-only " +
      "integration account or an application user (AuthType=ClientSecret or Certificate).",
  } as Record<string, string>,
  changedMeanwhile: "The connection setup was changed by another request at the same time (another enable or disable). Read it and try again.",
  crmFilterRefused:
    "The connection test passed, but Dynamics 365 Sales refuses a mapping's Dynamics 365 filter, so its runs would fail. Correct or remove the filter (PATCH .../sync/mappings/{mapping}), then enable again.",
  sharedOrganization: (others: string[]) =>
    `Other ERP companies synchronize with this Dynamics 365 Sales organization (${others.join(", ")}). Each company synchronizes only the accounts, ` +
    `contacts, products and sales orders that carry its company (bcbi_companyid) and those that carry none, which it takes when it couples them; ` +
    `salespeople, currencies and units of measure are shared.`,
  companyTableForbidden:
    "The connection user may not read or create rows of the organization's company table (bcbi_company), so CRM rows are not told apart by " +
    "ERP company: with several companies on this organization, a row one company's users create would be imported by each. Give the user " +
    "Create, Read, Write and AppendTo on that table (the integration role has them), then disable and enable the connection.",
  sharedOrganizationUnscoped: (others: string[]) =>
    `This organization is also connected to company ${others.join(", ")}, and it has no company table (Business Central's integration solution, ` +
    `bcbi_company), so CRM rows cannot be told apart by company: a row a user creates there would be imported by every company. Import the ` +
    `integration solution, or give each company's mappings a Dynamics 365 filter that tells their rows apart, before synchronizing both.`,
  userNotInOrganization: (user: string) =>
    `The connection user ${user} signed in, but is not a user of this Dynamics 365 Sales environment. Add the user (or the application user of this ` +
    `app registration) to the environment and assign the integration roles.`,
} as const;
