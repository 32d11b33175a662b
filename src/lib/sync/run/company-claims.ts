// The CRM rows a run would import, taken for this company first when several ERP companies share the organization.
import { DataverseRequestError } from "../../dataverse/dataverse-errors";
import { mapLimit, pointReadParallelism } from "../../map-limit";
import { companyBind, ownerOf, scopeOf } from "../../model/company-scope";
import type { CrmRow, PairPlan } from "../reconcile";
import type { Pair, RunContext } from "./run-context";
import { rowOf } from "../../storage/coupling-rows";

/**
 * What a wave writes to CRM rows read from the feed, when several ERP companies share the organization. A row
 * without a company is taken first (its company column set, on the ETag the run read it with), whether the wave
 * imports it, couples it to a matching record (same number, same email) or writes to a row it had coupled before
 * (a user cleared the column): two companies never both take one row. Dropped this run: a new row another company
 * took, or one changed since it was read (it comes again in the next feed). Taken: a row this company had coupled
 * that now names another company; reported, never written.
 */
export async function rowsOfOtherCompanies<W extends { pair: Pair; plan: Extract<PairPlan, { action: "write" }> }>(
  context: RunContext,
  writes: W[],
): Promise<{ drop: W[]; taken: W[] }> {
  const { definition, client, setup } = context;
  const companyId = scopeOf(setup, definition.crmEntitySet);
  const result = { drop: [] as W[], taken: [] as W[] };
  if (!companyId) return result;
  await mapLimit(
    writes.filter((write) => typeof write.pair.crm === "object"),
    pointReadParallelism,
    async (write) => {
      const row = write.pair.crm as CrmRow;
      const owner = ownerOf(setup, definition.crmEntitySet, row);
      // Coupled before this run (read from its row): a coupling made just now is a match or an import.
      const coupledBefore = write.pair.coupling !== undefined && rowOf(write.pair.coupling) === "present" && !write.plan.createErp;
      if (owner === "other") (coupledBefore ? result.taken : result.drop).push(write);
      if (owner !== "unclaimed") return;
      try {
        await client.update(definition.crmEntitySet, String(row[definition.crmKey]), companyBind(companyId), String(row["@odata.etag"] ?? "*"));
      } catch (error) {
        if (!(error instanceof DataverseRequestError) || (error.status !== 412 && error.status !== 404)) throw error;
        result.drop.push(write);
      }
    },
  );
  return result;
}

/**
 * Coupled rows of the CRM feed that carry no company (a user cleared it) get this company's back, on the ETag
 * they were read with, whether or not a mapped column changed: no other company imports them meanwhile.
 */
export async function reclaimCoupledRows(context: RunContext, rows: CrmRow[]): Promise<void> {
  const { definition, client, setup } = context;
  const companyId = scopeOf(setup, definition.crmEntitySet);
  if (!companyId) return;
  const cleared = rows.filter(
    (row) => context.byCrm.has(String(row[definition.crmKey]).toLowerCase()) && ownerOf(setup, definition.crmEntitySet, row) === "unclaimed",
  );
  await mapLimit(cleared, pointReadParallelism, async (row) => {
    await client
      .update(definition.crmEntitySet, String(row[definition.crmKey]), companyBind(companyId), String(row["@odata.etag"] ?? "*"))
      .catch((error: unknown) => {
        // Changed since it was read: it comes again in the next feed.
        if (!(error instanceof DataverseRequestError) || (error.status !== 412 && error.status !== 404)) throw error;
      });
  });
}
