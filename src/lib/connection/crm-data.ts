import { DataverseRequestError } from "../dataverse/dataverse-errors";
import * as z from "zod";
import type { CallerPrincipal } from "../caller";
import { conflict, fieldErrorsFromZod, forbidden, invalid, notFound } from "../errors";
import { requireCompany, requireSetup } from "../model/company";
import type { SetupRepository } from "../storage/setup-repository";
import { findCrmUserByEmail } from "./connection-test";
import type { CrmConnector } from "./crm-connector";

/** Entity sets ERP users may read through this service. */
export const readableEntitySets = [
  "accounts",
  "contacts",
  "products",
  "salesorders",
  "invoices",
  "pricelevels",
  "transactioncurrencies",
  "uomschedules",
  "systemusers",
] as const;

const identifierList = z.string().regex(/^[a-z_][a-z0-9_]*(,[a-z_][a-z0-9_]*)*$/, "must be a comma-separated list of column names");
export const crmQueryInput = z.object({
  $select: identifierList.optional(),
  $filter: z.string().min(1).max(2000).optional(),
  $top: z.coerce.number().int("must be a whole number").min(1).max(5000).default(50),
});

export const crmDataMessages = {
  notEnabled: "The connection is not enabled, so Dynamics 365 Sales data cannot be reached.",
  signInRequired: "ERP users must map to Dynamics 365 Sales users: sign in (App Service authentication) so that your email can be matched.",
  unmapped: (user: string) => `ERP users must map to Dynamics 365 Sales users, and no active Dynamics 365 Sales user has the email of ${user}.`,
} as const;

/**
 * CRM rows read for the calling ERP user: as that user (impersonation) when users must map, otherwise
 * as the connection user.
 */
export async function readCrmData(
  company: string,
  entitySet: string,
  query: Record<string, string>,
  caller: CallerPrincipal | undefined,
  init: { setups: SetupRepository; connector: CrmConnector },
): Promise<{ value: Record<string, unknown>[]; actingAs: "connection-user" | { systemuserid: string } }> {
  requireCompany(company);
  if (!(readableEntitySets as readonly string[]).includes(entitySet)) {
    throw notFound(`"${entitySet}" is not one of the readable entity sets: ${readableEntitySets.join(", ")}.`);
  }
  const input = crmQueryInput.safeParse(query);
  if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
  const stored = await requireSetup(init.setups, company);
  if (!stored.value.isEnabled) throw conflict(crmDataMessages.notEnabled);
  let client = await init.connector.client(stored.value);
  let actingAs: "connection-user" | { systemuserid: string } = "connection-user";
  if (stored.value.usersMustMapToCrmUsers) {
    if (!caller?.email) throw forbidden(crmDataMessages.signInRequired);
    const crmUser = await findCrmUserByEmail(client, caller.email);
    if (!crmUser) throw forbidden(crmDataMessages.unmapped(caller.name));
    client = client.impersonate(crmUser.systemuserid);
    actingAs = { systemuserid: crmUser.systemuserid };
  }
  try {
    const value = await client.retrieveMultiple(entitySet, {
      ...(input.data.$select && { select: input.data.$select.split(",") }),
      ...(input.data.$filter && { filter: input.data.$filter }),
      top: input.data.$top,
    });
    return { value, actingAs };
  } catch (error) {
    // Dynamics 365 refused the query itself (a malformed $filter, an unknown column): the caller's input is at fault.
    if (error instanceof DataverseRequestError && error.status === 400) {
      throw invalid([{ path: input.data.$filter ? "$filter" : "$select", message: `Dynamics 365 refused the query: ${error.message.slice(0, 300)}` }]);
    }
    throw error;
  }
}
