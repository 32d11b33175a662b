// Applies one wave's plans: the writes (to-crm.ts, to-erp.ts), then the couplings, the retry list and the counts.
import type { Coupling } from "../../model/coupling";
import { type SyncIssue, issueKey } from "../../model/sync-issue";
import { syncMessages } from "../../model/sync-plan";
import type { PairPlan } from "../reconcile";
import { type CouplingRow, rowOf } from "../../storage/coupling-rows";
import { type Outcome, type Pair, type RunContext, type RunDeps, coupledCrm, idsOf } from "./run-context";
import { writeCrm } from "./to-crm";
import { writeErp } from "./to-erp";
import { crmIdFor } from "../../model/crm-ids";
import { companyBind, scopeOf } from "../../model/company-scope";
import { rowsOfOtherCompanies } from "./company-claims";

export async function applyOutcomes(deps: RunDeps, context: RunContext, outcomes: Outcome[]): Promise<void> {
  const { company, name, definition } = context;
  // With what the run knows of each coupling's row, so the write is a create or an update rather than an upsert.
  const couplingUpdates = new Map<string, { coupling: Coupling; row: CouplingRow; before?: Coupling }>();
  const couplingRemovals: string[] = [];
  const issueUpdates: SyncIssue[] = [];
  const issueRemovals: { side: SyncIssue["side"]; sourceId: string }[] = [];
  const replaced: { id: string; modifiedAt: string }[] = [];
  const now = deps.clock().toISOString();
  const direction = (pair: Pair): "toCrm" | "fromCrm" => (pair.source === "erp" ? "toCrm" : "fromCrm");
  const resolved = (pair: Pair) => {
    if (pair.issue) issueRemovals.push({ side: pair.issue.side, sourceId: pair.issue.sourceId });
  };
  const report = (pair: Pair, kind: SyncIssue["kind"], reason: string, extra: Partial<SyncIssue> = {}, towards?: "toCrm" | "fromCrm") => {
    const ids = idsOf(pair);
    const dir = towards ?? direction(pair);
    const attempts = (pair.issue?.attempts ?? 0) + (kind === "failed" ? 1 : 0);
    const finalKind = kind === "failed" && attempts >= definition.maxAttempts ? "skipped" : kind;
    context.counts[dir].failed++;
    context.errors[dir].push({
      sourceId: dir === "toCrm" ? (ids.erpId ?? ids.sourceId) : (ids.crmId ?? ids.sourceId),
      ...((dir === "toCrm" ? ids.crmId : ids.erpId) && { destinationId: (dir === "toCrm" ? ids.crmId : ids.erpId)! }),
      reason,
    });
    if (pair.issue && pair.issue.side !== ids.side) issueRemovals.push({ side: pair.issue.side, sourceId: pair.issue.sourceId });
    issueUpdates.push({
      id: issueKey(name, ids.side, ids.sourceId),
      company,
      mapping: name,
      side: ids.side,
      sourceId: ids.sourceId,
      ...(ids.erpId !== undefined && { erpId: ids.erpId }),
      ...(ids.crmId !== undefined && { crmId: ids.crmId }),
      kind: finalKind,
      attempts,
      reason,
      direction: dir,
      firstAt: pair.issue?.firstAt ?? now,
      lastAt: now,
      runId: context.runId,
      ...extra,
    });
  };

  const writes: { pair: Pair; plan: Extract<PairPlan, { action: "write" }>; crmId?: string; erpId?: string; crmOk: boolean; erpOk: boolean }[] = [];
  for (const { pair, plan } of outcomes) {
    switch (plan.action) {
      case "none":
        resolved(pair);
        break;
      case "skip":
        context.counts[direction(pair)].skipped++;
        if (pair.issue?.kind !== "skipped") resolved(pair);
        break;
      case "defer":
        report(pair, "deferred", plan.reason, {}, plan.missing[0]!.erpCode !== undefined ? "toCrm" : "fromCrm");
        break;
      case "fail":
        // A deletion: noticed on the side where the row is gone.
        report(
          pair,
          "failed",
          plan.reason,
          {},
          pair.crm === "deleted" ? "fromCrm" : pair.erp === "missing" || pair.erp?.deleted === true ? "toCrm" : undefined,
        );
        break;
      case "conflict":
        report(pair, "conflict", plan.reason, { conflicts: plan.conflicts });
        break;
      case "removeCoupling": {
        const coupling = pair.coupling!;
        couplingRemovals.push(coupling.erpId);
        context.counts[pair.crm === "deleted" ? "fromCrm" : "toCrm"].deleted++;
        resolved(pair);
        break;
      }
      case "write":
        writes.push({ pair, plan, crmOk: true, erpOk: true });
        break;
    }
  }
  // Rows another ERP company took are not this company's to write (company-claims.ts).
  const { drop, taken } = await rowsOfOtherCompanies(context, writes);
  for (const write of drop) {
    writes.splice(writes.indexOf(write), 1);
    resolved(write.pair);
  }
  for (const write of taken) {
    writes.splice(writes.indexOf(write), 1);
    report(write.pair, "failed", syncMessages.rowOfOtherCompany(definition.crmEntitySet), {}, "toCrm");
  }

  // CRM creates get their id before the write, recorded in the wave's manifest: a rerun after a crash upserts the same row.
  // The id derives from the record, so even a rerun whose manifest was lost writes that row and no other.
  const creates: Pick<Coupling, "erpId" | "crmId">[] = [];
  for (const write of writes) {
    if (!write.plan.createCrm) continue;
    const crmId = String(
      write.plan.toCrm![definition.crmKey] ?? write.pair.coupling?.crmId ?? (await derivedCrmId(deps, context, idsOf(write.pair).erpId!)),
    ).toLowerCase();
    write.plan.toCrm![definition.crmKey] = crmId;
    // A row this company creates is its own: other companies on the organization never see it.
    const companyId = scopeOf(context.setup, definition.crmEntitySet);
    if (companyId) Object.assign(write.plan.toCrm!, companyBind(companyId));
    write.crmId = crmId;
    creates.push({ erpId: idsOf(write.pair).erpId!, crmId });
  }
  const manifest = creates.length > 0 ? await deps.init.couplings.savePending(company, name, creates) : undefined;

  const crmFailures = await writeCrm(
    deps,
    context,
    writes.filter((write) => write.plan.toCrm),
  );
  // Columns Dataverse takes only in an update go right after their row was created.
  const followUps = writes
    .filter((write) => write.plan.afterCreate && !crmFailures.has(write))
    .map((write) => ({
      write,
      plan: { ...write.plan, createCrm: false, toCrm: { ...write.plan.afterCreate, [definition.crmKey]: write.plan.toCrm![definition.crmKey] } },
    }));
  for (const [followUp, reason] of await writeCrm(deps, context, followUps)) crmFailures.set(followUp.write, reason);
  for (const write of writes) {
    const failure = crmFailures.get(write);
    if (failure) {
      write.crmOk = false;
      report(write.pair, "failed", failure, {}, "toCrm");
    }
  }
  const erpFailures = await writeErp(
    deps,
    context,
    writes.filter((write) => write.crmOk && write.plan.toErp),
  );
  for (const write of writes) {
    if (!write.crmOk) continue;
    const failure = erpFailures.get(write);
    if (failure) {
      write.erpOk = false;
      report(write.pair, failure.race ? "deferred" : "failed", failure.reason, {}, "fromCrm");
    }
  }

  const coupled = new Set<string>();
  for (const write of writes) {
    if (!write.crmOk) continue;
    const { pair, plan } = write;
    const ids = idsOf(pair);
    const erpId = write.erpId ?? ids.erpId!;
    const crmId = (write.crmId ?? ids.crmId!).toLowerCase();
    // A new ERP record that could not be written makes no coupling; the CRM row is tried again.
    if (!write.erpOk && plan.createErp) continue;
    // What the ERP did not take keeps its old synchronized value, so the change is seen again.
    const synced = { ...plan.synced };
    if (!write.erpOk) {
      for (const key of Object.keys(plan.toErp ?? {})) {
        if (pair.coupling?.synced && key in pair.coupling.synced) synced[key] = pair.coupling.synced[key];
        else delete synced[key];
      }
    }
    const before = pair.coupling;
    const erpModifiedAt = pair.erpStamp ?? before?.erpModifiedAt;
    const coupling: Coupling = { erpId, crmId, pending: false, synced, ...(erpModifiedAt && { erpModifiedAt }) };
    // The change row of the record's last synchronized state is replaced by the one just processed.
    if (pair.erpStamp && before?.erpModifiedAt && before.erpModifiedAt < pair.erpStamp) replaced.push({ id: erpId, modifiedAt: before.erpModifiedAt });
    const changed =
      !before ||
      before.pending ||
      before.crmId.toLowerCase() !== crmId ||
      before.erpModifiedAt !== erpModifiedAt ||
      JSON.stringify(before.synced) !== JSON.stringify(synced);
    // Saved, not kept: a run pairs its records before its first wave, so nothing reads the couplings of a done wave.
    if (changed) couplingUpdates.set(erpId, { coupling, row: rowOf(before), ...(before && { before }) });
    coupled.add(erpId);
    if (write.erpOk) resolved(pair);
    const toCrmColumns = Object.keys(plan.toCrm ?? {}).filter((column) => column !== definition.crmKey);
    if (plan.createCrm) context.counts.toCrm.inserted++;
    else if (toCrmColumns.length > 0) context.counts.toCrm.modified++;
    if (write.erpOk && plan.toErp) {
      if (plan.createErp) context.counts.fromCrm.inserted++;
      else context.counts.fromCrm.modified++;
    }
    if (!plan.createCrm && !plan.createErp && toCrmColumns.length === 0 && !plan.toErp) context.counts[direction(pair)].unchanged++;
  }

  await deps.init.couplings.save(
    company,
    name,
    [...couplingUpdates.values()].map((update) => update.coupling),
    (coupling) => couplingUpdates.get(coupling.erpId)!.row,
    // A coupling read from its row keeps its index row while its CRM id stays (the run indexed the mapping first).
    (coupling) => {
      const { before, row } = couplingUpdates.get(coupling.erpId)!;
      return row === "present" && before?.crmId.toLowerCase() === coupling.crmId.toLowerCase();
    },
  );
  if (manifest)
    await deps.init.couplings.settlePending(
      company,
      name,
      manifest,
      creates.filter((create) => !coupled.has(create.erpId)),
    );
  await deps.init.erpRecords.forgetChanges(company, definition.erpTable, replaced);
  if (couplingRemovals.length > 0) await deps.init.couplings.remove(company, name, couplingRemovals);
  const updatedKeys = new Set(issueUpdates.map((issue) => `${issue.side}~${issue.sourceId}`));
  await deps.init.issues.save(company, name, issueUpdates);
  const removed = dedupe(issueRemovals.filter((key) => !updatedKeys.has(`${key.side}~${key.sourceId}`)));
  await deps.init.issues.remove(company, name, removed);
  for (const issue of issueUpdates) context.issuesWritten.set(`${issue.side}:${issue.sourceId}`, issue);
  for (const key of removed) context.issuesWritten.delete(`${key.side}:${key.sourceId}`);
}

function dedupe<T extends { side: string; sourceId: string }>(keys: T[]): T[] {
  return [...new Map(keys.map((key) => [`${key.side}~${key.sourceId}`, key])).values()];
}

/** The derived id of a new CRM row, past any that an admin coupled to another record. */
async function derivedCrmId(deps: RunDeps, context: RunContext, erpId: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const crmId = crmIdFor(context.company, context.name, erpId, attempt);
    const holder = await coupledCrm(deps, context, crmId);
    if (!holder || holder.erpId === erpId) return crmId;
  }
}
