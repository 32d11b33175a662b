// Writes CRM changes to the ERP records, each only if the record did not change since it was read.
import type { ErpFields } from "../../model/erp-schemas";
import { erpSchemas } from "../../model/erp-schemas";
import type { SyncWrite } from "../../storage/erp-record-repository";
import type { PairPlan } from "../reconcile";
import type { Pair, RunContext, RunDeps } from "./run-context";

/** ERP writes: each only if the record did not change since it was read (a race is retried, not lost). */
export async function writeErp<T extends { pair: Pair; plan: Extract<PairPlan, { action: "write" }>; erpId?: string }>(
  deps: RunDeps,
  context: RunContext,
  writes: T[],
): Promise<Map<T, { reason: string; race: boolean }>> {
  const { definition, company } = context;
  const schema = erpSchemas[definition.erpTable];
  const failures = new Map<T, { reason: string; race: boolean }>();
  const prepared: { write: T; fields: ErpFields; basedOn?: SyncWrite["basedOn"] }[] = [];
  for (const write of writes) {
    const current = write.pair.erp && write.pair.erp !== "missing" && !write.pair.erp.deleted ? write.pair.erp : undefined;
    const merged: Record<string, unknown> = { ...(write.plan.createErp ? {} : (current?.fields ?? {})) };
    for (const [key, value] of Object.entries(write.plan.toErp!)) {
      if (value === null || value === undefined) delete merged[key];
      else merged[key] = value;
    }
    const parsed = schema.safeParse(merged);
    if (!parsed.success) {
      failures.set(write, { reason: parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; "), race: false });
      continue;
    }
    write.erpId = (parsed.data as ErpFields).id;
    const read = write.pair.erp && write.pair.erp !== "missing" ? write.pair.erp : undefined;
    const basedOn = read && { modifiedAt: read.modifiedAt, ...(read.etag && { etag: read.etag }) };
    prepared.push({ write, fields: parsed.data as ErpFields, ...(basedOn && { basedOn }) });
  }
  const { conflicts } = await deps.init.erpRecords.writeFromSync(
    company,
    definition.erpTable,
    prepared.map(({ fields, basedOn }) => ({ fields, ...(basedOn && { basedOn }) })),
  );
  const lost = new Set(conflicts);
  for (const { write, fields, basedOn } of prepared) {
    if (!lost.has(fields.id)) continue;
    // Read before, the record changed meanwhile (a race, retried); not read, a record with that id exists.
    if (basedOn)
      failures.set(write, { reason: "The ERP record changed while it was being synchronized; it is synchronized again on the next run.", race: true });
    else
      failures.set(write, {
        reason:
          `An ERP ${definition.erpTable} record with the id ${fields.id} exists already and is not coupled to this CRM row. Couple them by ` +
          `hand or change one of the ids.`,
        race: false,
      });
  }
  return failures;
}
