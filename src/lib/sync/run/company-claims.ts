// The CRM rows a run would import, taken for this company first when several ERP companies share the organization.
import { DataverseRequestError } from "../../dataverse/dataverse-errors";
import { mapLimit, pointReadParallelism } from "../../map-limit";
import { companyBind, ownerOf, scopeOf } from "../../model/company-scope";
import type { CrmRow, PairPlan } from "../reconcile";
import type { Pair, RunContext } from "./run-context";

/**
 * New ERP records from CRM rows, when several ERP companies share the organization: an unclaimed row is taken
 * first (its company column set, on the ETag the run read it with), so two companies never both import it; a
 * row another company took, or took first, is left to it. A row changed since it was read comes again in the
 * next run's feed and is decided then.
 */
export async function rowsOfOtherCompanies<W extends { pair: Pair; plan: Extract<PairPlan, { action: "write" }> }>(
  context: RunContext,
  writes: W[],
): Promise<W[]> {
  const { definition, client, setup } = context;
  const companyId = scopeOf(setup, definition.crmEntitySet);
  if (!companyId) return [];
  const others: W[] = [];
  await mapLimit(
    writes.filter((write) => write.plan.createErp && typeof write.pair.crm === "object"),
    pointReadParallelism,
    async (write) => {
      const row = write.pair.crm as CrmRow;
      const owner = ownerOf(setup, definition.crmEntitySet, row);
      if (owner === "other") others.push(write);
      if (owner !== "unclaimed") return;
      try {
        await client.update(definition.crmEntitySet, String(row[definition.crmKey]), companyBind(companyId), String(row["@odata.etag"] ?? "*"));
      } catch (error) {
        if (!(error instanceof DataverseRequestError) || (error.status !== 412 && error.status !== 404)) throw error;
        others.push(write);
      }
    },
  );
  return others;
}
