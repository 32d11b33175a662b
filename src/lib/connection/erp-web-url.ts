import type { DataverseClient } from "../dataverse/dataverse-client";

/**
 * The ERP web client URL lives in CRM in the integration solution's connection record, so that CRM users
 * can open the coupled ERP record. One record per ERP company, found by name.
 */
export async function writeErpWebUrlToCrm(client: DataverseClient, company: string, url: string | undefined): Promise<void> {
  const escaped = company.replace(/'/g, "''");
  const [existing] = await client.retrieveMultiple<{ nav_connectionid: string }>("nav_connections", {
    select: ["nav_connectionid"],
    filter: `nav_name eq '${escaped}'`,
    top: 1,
  });
  const row = { nav_name: company, nav_dynamicsnavurl: url ?? null };
  if (existing) await client.update("nav_connections", existing.nav_connectionid, row);
  else await client.create("nav_connections", row);
}
