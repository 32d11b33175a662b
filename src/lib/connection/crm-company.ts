// This ERP company's row in the organization's company table (Business Central's integration solution).
import type { DataverseClient } from "../dataverse/dataverse-client";
import { DataverseRequestError } from "../dataverse/dataverse-errors";
import { companySet } from "../model/company-scope";
import { crmIdFor } from "../model/crm-ids";

export interface CompanyRow {
  id: string;
  /** The other ERP companies that synchronize with the organization, by name. */
  others: string[];
}

/**
 * Finds this ERP company's row in the company table (`bcbi_company`, by its external id), or makes it with an id
 * derived from the company, so two enables at once make one row. Undefined when the organization has no such
 * table (Business Central's integration solution is not there): rows cannot be told apart by company then.
 */
export async function companyRowOf(client: DataverseClient, company: string): Promise<CompanyRow | "forbidden" | undefined> {
  let rows: { bcbi_companyid: string; bcbi_name?: string; bcbi_externalid?: string }[];
  try {
    rows = await client.retrieveMultiple(companySet, { select: ["bcbi_companyid", "bcbi_name", "bcbi_externalid"] });
  } catch (error) {
    if (error instanceof DataverseRequestError && error.status === 404) return undefined;
    if (error instanceof DataverseRequestError && error.status === 403) return "forbidden";
    throw error;
  }
  const mine = rows.find((row) => row.bcbi_externalid === company);
  let id = mine?.bcbi_companyid;
  if (!id) {
    id = crmIdFor(company, "bcbi_company", company);
    try {
      await client.upsert(companySet, id, { bcbi_name: company, bcbi_externalid: company });
    } catch (error) {
      // The connection user's roles do not cover the company table: the admin is told, rows are not scoped.
      if (error instanceof DataverseRequestError && error.status === 403) return "forbidden";
      throw error;
    }
  }
  const others = rows.filter((row) => row !== mine && row.bcbi_companyid !== id).map((row) => row.bcbi_name ?? row.bcbi_externalid ?? row.bcbi_companyid);
  return { id: id.toLowerCase(), others };
}
