import type { CrmSide, ErpSide, PairPlan } from "../reconcile";
import { reconcile } from "../reconcile";
import { syncMessages } from "../../model/sync-plan";
import type { Pair, RunContext } from "./run-context";

/** What to do with one pair: skipped records stay skipped, uncoupled ones wait where the mapping wants couplings, the rest is reconciled. */
export function planPair(context: RunContext, pair: Pair): PairPlan {
  const { definition } = context;
  const erp: ErpSide | undefined =
    pair.erp === undefined ? undefined : pair.erp === "missing" || pair.erp.deleted ? { kind: "deleted" } : { kind: "present", fields: pair.erp.fields };
  const crm: CrmSide | undefined =
    pair.crm === undefined
      ? undefined
      : pair.crm === "deleted"
        ? { kind: "deleted" }
        : pair.crm === "unchanged"
          ? { kind: "unchanged" }
          : { kind: "present", row: pair.crm };
  if (pair.issue?.kind === "skipped" && !context.targeted) return { action: "skip", reason: pair.issue.reason };
  if (!pair.coupling && definition.onlyCoupledRecords && !context.full) {
    const present = (pair.erp && pair.erp !== "missing" && !pair.erp.deleted) || (pair.crm && typeof pair.crm === "object");
    return present ? { action: "skip", reason: syncMessages.notCoupled } : { action: "none" };
  }
  return reconcile({
    mapping: definition,
    ...(pair.coupling && { coupling: pair.coupling }),
    ...(erp && { erp }),
    ...(crm && { crm }),
    lookups: context.lookups,
    ...(context.resolution && { resolution: context.resolution }),
  });
}
