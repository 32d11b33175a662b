// Which CRM rows belong to which ERP company, when several companies synchronize with one organization.
import type { ConnectionSetup } from "./connection-setup";

/**
 * Business Central's rule (learn.microsoft.com/dynamics365/business-central/admin-synchronizing-business-central-and-sales,
 * "Synchronize data from multiple companies or environments"): the integration solution gives accounts, contacts,
 * products and sales orders a company column (`bcbi_companyid`, a lookup to `bcbi_company`, one row per ERP
 * company); a company synchronizes the rows that carry its id and the rows that carry none, and a row it
 * creates or takes carries its id from then on. Salespeople (CRM users), currencies and units are shared.
 */
export const companyScopedSets: ReadonlySet<string> = new Set(["accounts", "contacts", "products", "salesorders"]);
export const companySet = "bcbi_companies";
export const companyValue = "_bcbi_companyid_value";
const companyNavigation = "bcbi_CompanyId";

type Scope = Pick<ConnectionSetup, "crmCompanyId">;

/** The company's id in CRM when rows of this table are told apart by company (the organization has the column). */
export function scopeOf(setup: Scope, entitySet: string): string | undefined {
  return setup.crmCompanyId && companyScopedSets.has(entitySet) ? setup.crmCompanyId : undefined;
}

/** The `$filter` clause that keeps this company's rows and unclaimed ones. */
export function scopeFilter(setup: Scope, entitySet: string): string | undefined {
  const id = scopeOf(setup, entitySet);
  return id && `(${companyValue} eq ${id} or ${companyValue} eq null)`;
}

/** A row filter with the company's scope added to it. */
export function withScope(setup: Scope, entitySet: string, filter: string | undefined): string | undefined {
  const scope = scopeFilter(setup, entitySet);
  if (!scope) return filter;
  return filter ? `(${filter}) and ${scope}` : scope;
}

/** Columns to read beside a table's own where rows are told apart: the company column, and who created the row. */
export function scopeColumns(setup: Scope, entitySet: string): string[] {
  return scopeOf(setup, entitySet) ? [companyValue, "_createdby_value"] : [];
}

/** The column a row this company creates or takes is written with. */
export function companyBind(companyId: string): Record<string, string> {
  return { [`${companyNavigation}@odata.bind`]: `/${companySet}(${companyId})` };
}

/** Whose a row is: this company's, nobody's yet, or another company's. */
export function ownerOf(setup: Scope, entitySet: string, row: Record<string, unknown>): "ours" | "unclaimed" | "other" {
  const id = scopeOf(setup, entitySet);
  if (!id) return "ours";
  const owner = row[companyValue];
  if (owner === undefined || owner === null || owner === "") return "unclaimed";
  return String(owner).toLowerCase() === id.toLowerCase() ? "ours" : "other";
}
