// Found by an independent review of the sync engine; each failed before its fix.
import { describe, expect, it } from "vitest";
import { CouplingRepository } from "../../src/lib/storage/coupling-repository";
import { SyncRunner } from "../../src/lib/sync/sync-runner";
import { type MappingRunOptions } from "../../src/lib/sync/run/run-context";
import { useSyncHarness } from "../support/sync-harness";

const harness = useSyncHarness();
const { jane, admin, enabledCompany, put, erp, run, couplingOf } = harness;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A runner with one pair per wave whose `hook` runs after each coupling save (i.e. after each wave's apply). */
function runnerWith(hook: () => void, batch = 1, before?: () => void) {
  const s = harness.demo.app.services;
  const real = new CouplingRepository(s.tables);
  const couplings = Object.create(real) as CouplingRepository;
  couplings.save = async (...args) => {
    before?.();
    await real.save(...args);
    hook();
  };
  return new SyncRunner({
    sync: s.sync,
    couplings,
    erpRecords: s.erpRecordStore,
    logs: s.syncLog,
    issues: s.syncIssues,
    connector: s.connector,
    setups: s.setups,
    config: { SYNC_BATCH_SIZE: batch, SYNC_MAX_PARALLEL: 1 },
  });
}

describe("regressions found in an independent review of the sync", () => {
  it("a retried record does not move the ERP watermark past changes of waves that never started", async () => {
    const company = await enabledCompany();
    // A is deferred: its salesperson XX is not coupled (SALESPEOPLE couples coupled records only).
    await put(company, "customers", [{ id: "A", name: `${company} A`, salespersonCode: "XX" }]);
    await run(company, "CUSTOMER");
    expect((await harness.demo.app.services.syncIssues.list(company, "CUSTOMER")).map((issue) => issue.kind)).toEqual(["deferred"]);
    await put(company, "customers", [{ id: "A", name: `${company} A2`, salespersonCode: "XX" }]); // stamp t1
    await sleep(2500);
    await put(company, "customers", [{ id: "B", name: `${company} B` }]); // stamp t2 > t1 + 2 s
    await sleep(2500);
    await put(company, "customers", [{ id: "C", name: `${company} C` }]); // stamp t3 > t2 + 2 s
    // The run's time budget runs out once its first wave (A, on the retry list and changed again) is written;
    // the second wave (B) is already under way, the third (C) never starts.
    const budget = new AbortController();
    const options: MappingRunOptions = { budget: budget.signal };
    const result = await runnerWith(() => budget.abort()).runMapping(company, "CUSTOMER", options);
    expect(result.stoppedEarly).toBe(true);
    expect(await couplingOf(company, "CUSTOMER", "C"), "C is left for the next run").toBeUndefined();
    // "the next run continues from there"
    await run(company, "CUSTOMER");
    await run(company, "CUSTOMER");
    expect(await couplingOf(company, "CUSTOMER", "B"), "B was never sent to CRM, and is not reported").toBeDefined();
    expect(await couplingOf(company, "CUSTOMER", "C"), "C was never sent to CRM, and is not reported").toBeDefined();
  });

  it("a crash after the CRM create of a unit group: the rerun finishes the coupling instead of sending a create-only column again", async () => {
    const company = await enabledCompany();
    await put(company, "unitsOfMeasure", [{ id: "PCS", description: "Pieces" }]);
    let saves = 0;
    // The process dies at the coupling save after the CRM write (the CRM id was recorded in the wave's manifest).
    await runnerWith(
      () => undefined,
      100,
      () => {
        saves++;
        throw new Error("process died");
      },
    )
      .runMapping(company, "UNIT OF MEASURE")
      .catch(() => undefined);
    const stored = await harness.demo.app.services.sync.mapping(company, "UNIT OF MEASURE");
    await harness.demo.app.services.sync.saveMapping({ ...stored!.value, runLeaseOwner: undefined, runLeaseExpiresAt: undefined }, stored!.etag);
    expect(saves).toBe(1);
    expect((await couplingOf(company, "UNIT OF MEASURE", "PCS"))?.pending).toBe(true);
    for (let i = 0; i < 3; i++) await run(company, "UNIT OF MEASURE");
    const issues = await harness.demo.app.services.syncIssues.list(company, "UNIT OF MEASURE");
    expect(
      issues.map((issue) => issue.reason),
      "the rerun fails on baseuomname",
    ).toEqual([]);
    expect((await couplingOf(company, "UNIT OF MEASURE", "PCS"))?.pending).toBe(false);
  });

  it("removeCoupling stays done when the last changes are read again (watermark lag)", async () => {
    const company = await enabledCompany();
    await harness.demo.app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { body: { deletionConflictResolution: "removeCoupling" } });
    await put(company, "customers", [{ id: "C1", name: `${company} Gone`, homePage: company }]);
    await run(company, "CUSTOMER");
    const accountId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    expect((await admin("DELETE", `accounts(${accountId})`)).status).toBe(204);
    await run(company, "CUSTOMER"); // removes the coupling; the ERP record stays, uncoupled
    expect(await couplingOf(company, "CUSTOMER", "C1")).toBeUndefined();
    await run(company, "CUSTOMER"); // nothing changed anywhere
    expect(
      harness.demo.simulator.store.rows("accounts").filter((row) => row.websiteurl === company),
      "a new account appeared",
    ).toHaveLength(0);
  });

  it("after removeCoupling of an ERP deletion, the CRM row read again does not come back as a new customer", async () => {
    const company = await enabledCompany();
    await harness.demo.app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { body: { deletionConflictResolution: "removeCoupling" } });
    await put(company, "customers", [{ id: "C1", name: `${company} Gone` }]);
    await run(company, "CUSTOMER");
    const accountId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    await jane("PATCH", `accounts(${accountId})`, { body: { telephone1: "+47 1" } });
    await run(company, "CUSTOMER");
    await harness.demo.app.call("DELETE", `/api/companies/${company}/erp/customers/C1`);
    await run(company, "CUSTOMER"); // removes the coupling
    await run(company, "CUSTOMER");
    const resurrected = (await harness.demo.app.services.erpRecordStore.changedSince(company, "customers")).filter((record) => !record.deleted);
    expect(
      resurrected.map((record) => record.id),
      "the deleted customer came back under a new number",
    ).toEqual([]);
  });

  it("a CRM owner who is not (yet) a coupled salesperson leaves the ERP customer's salesperson as it is", async () => {
    const company = await enabledCompany();
    await put(company, "salespeople", [{ id: "JS", name: "Jane S.", email: "jane@demo.example" }]);
    await run(company, "SALESPEOPLE");
    expect(await couplingOf(company, "SALESPEOPLE", "JS")).toBeDefined();
    await put(company, "customers", [{ id: "C1", name: `${company} Owned`, salespersonCode: "JS" }]);
    await run(company, "CUSTOMER");
    const accountId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    const adminId = harness.demo.simulator.store.rows("systemusers").find((row) => row.internalemailaddress === "admin@demo.example")!.systemuserid;
    expect((await admin("PATCH", `accounts(${accountId})`, { body: { "ownerid@odata.bind": `/systemusers(${String(adminId)})` } })).status).toBe(204);
    await run(company, "CUSTOMER");
    expect((await erp(company, "customers", "C1"))!.salespersonCode, "salesperson wiped because the new owner is not coupled").toBe("JS");
  });

  it("an open conflict is reported once, not again by every later run", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} One` }]);
    await run(company, "CUSTOMER");
    const accountId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    await put(company, "customers", [{ id: "C1", name: "ERP name" }]);
    await jane("PATCH", `accounts(${accountId})`, { body: { name: "CRM name" } });
    await run(company, "CUSTOMER"); // reports the conflict once
    const later = [];
    for (let i = 0; i < 3; i++) later.push((await run(company, "CUSTOMER")).logs.reduce((sum, log) => sum + log.failed, 0));
    expect(later, "nothing changed, yet every run logs the conflict as a new failure").toEqual([0, 0, 0]);
  });

  it("a mapping setting changed by an admin during a run neither fails the run nor locks the mapping", async () => {
    const company = await enabledCompany();
    await put(
      company,
      "customers",
      Array.from({ length: 6 }, (_, index) => ({ id: `C${index}`, name: `${company} ${index}` })),
    );
    let patch: Promise<{ status: number }> | undefined;
    const runner = runnerWith(() => {
      patch ??= harness.demo.app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { body: { maxAttempts: 7 } });
    }, 2);
    const result = await runner.runMapping(company, "CUSTOMER");
    expect(result.logs.find((log) => log.direction === "toCrm")!.inserted).toBe(6);
    // The admin's save either went in, or lost a race with the run's save and said so (412): then it is sent again.
    if ((await patch!).status === 412)
      expect((await harness.demo.app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { body: { maxAttempts: 7 } })).status).toBe(200);
    const mapping = (await harness.demo.app.services.sync.mapping(company, "CUSTOMER"))!.value;
    expect(JSON.parse(mapping.definitionJson).maxAttempts).toBe(7);
    expect(mapping.runLeaseOwner).toBeUndefined();
  });

  it("a delta link Dataverse no longer honours is replaced by a fresh listing, and deletions are still found", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} One` }]);
    await run(company, "CUSTOMER");
    await run(company, "CUSTOMER"); // starts change tracking
    const stored = (await harness.demo.app.services.sync.mapping(company, "CUSTOMER"))!;
    await harness.demo.app.services.sync.saveMapping(
      { ...stored.value, crmDeltaLink: `${harness.demo.simulator.url}/api/data/v9.2/accounts?$select=accountid&$deltatoken=1!2000-01-01T00:00:00Z` },
      stored.etag,
    );
    await admin("DELETE", `accounts(${(await couplingOf(company, "CUSTOMER", "C1"))!.crmId})`);
    const result = await run(company, "CUSTOMER");
    expect(result.logs.find((log) => log.direction === "fromCrm")!.failed).toBe(1);
  });

  it("a CRM-born product whose number belongs to a deleted item restores that item instead of failing forever", async () => {
    const company = await enabledCompany();
    const number = `R-${company.slice(-6)}`;
    await put(company, "items", [{ id: number, description: "Old item" }]);
    await harness.demo.app.call("DELETE", `/api/companies/${company}/erp/items/${number}`);
    expect((await admin("POST", "products", { body: { name: "CRM item", productnumber: number, producttypecode: 1 } })).status).toBe(204);
    await run(company, "ITEM-PRODUCT");
    expect(await erp(company, "items", number)).toMatchObject({ description: "CRM item" });
    expect(await harness.demo.app.services.syncIssues.list(company, "ITEM-PRODUCT")).toEqual([]);
  });
});
