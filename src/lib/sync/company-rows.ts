// The company column of the rows a company had coupled before the organization's rows were told apart by company.
import type { DataverseClient } from "../dataverse/dataverse-client";
import type { CouplingRepository } from "../storage/coupling-repository";
import type { SyncRepository } from "../storage/sync-repository";
import { companyBind, companyScopedSets, companyValue } from "../model/company-scope";
import type { MappingDefinition } from "./default-mappings";

/**
 * Rows this company coupled before the organization's rows were told apart by company carry no company yet:
 * they get this company's, so no other company takes them when a user edits them. Once per enable; each
 * mapping's couplings are read a page of ids at a time, and only rows without a company are written.
 */
export async function claimCoupledRows(
  deps: { sync: SyncRepository; couplings: CouplingRepository },
  client: DataverseClient,
  company: string,
  companyId: string,
): Promise<number> {
  let claimed = 0;
  for (const { value } of await deps.sync.mappings(company)) {
    const definition = JSON.parse(value.definitionJson) as MappingDefinition;
    if (!companyScopedSets.has(definition.crmEntitySet)) continue;
    const ids = (await deps.couplings.load(company, value.name)).filter((coupling) => !coupling.pending).map((coupling) => coupling.crmId);
    for (let start = 0; start < ids.length; start += 500) {
      const rows = await client.retrieveByIds(definition.crmEntitySet, definition.crmKey, ids.slice(start, start + 500), {
        select: [definition.crmKey],
        filter: `${companyValue} eq null`,
      });
      if (rows.length === 0) continue;
      await client.updateMultiple(
        definition.crmEntitySet,
        rows.map((row) => ({ [definition.crmKey]: row[definition.crmKey], ...companyBind(companyId) })),
      );
      claimed += rows.length;
    }
  }
  return claimed;
}
