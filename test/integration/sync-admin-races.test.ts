import { describe, expect, it } from "vitest";
import { syncAdminMessages } from "../../src/lib/sync/sync-admin";
import { useSyncHarness } from "../support/sync-harness";

// What an admin does while a run of the same mapping is under way: the run and the admin never both decide
// a record's coupling.
const harness = useSyncHarness({ simulator: { latencyMs: 20 }, env: { SYNC_BATCH_SIZE: "10", SYNC_MAX_PARALLEL: "1" } });

async function customers(company: string, count: number): Promise<void> {
  await harness.put(
    company,
    "customers",
    Array.from({ length: count }, (_, index) => ({ id: `K${String(index).padStart(5, "0")}`, name: `${company} Customer ${index}` })),
  );
}

/** An account the CUSTOMER mapping does not import by itself (a competitor, not a customer), for the admin to couple. */
async function adminsAccount(company: string): Promise<string> {
  const created = await harness.admin("POST", "accounts", {
    body: { name: `${company} The admin's account`, customertypecode: 1 },
    headers: { prefer: "return=representation" },
  });
  return created.json.accountid as string;
}

describe("couplings by hand while a run of the mapping goes on", () => {
  it("while a run holds the mapping, couple and uncouple answer 409 naming it, and store nothing", { timeout: 60_000 }, async () => {
    const company = await harness.enabledCompany();
    await customers(company, 2);
    await harness.run(company, "CUSTOMER");
    const chosenId = await adminsAccount(company);
    await harness.put(company, "customers", [{ id: "K00002", name: `${company} Customer 2` }]);

    // A run on another instance, as far as the mapping row can tell.
    const release = await harness.holdMapping(company, "CUSTOMER");
    try {
      const couple = await harness.demo.app.call("PUT", `/api/companies/${company}/sync/couplings/CUSTOMER/K00002`, { body: { crmId: chosenId } });
      expect(couple.status).toBe(409);
      expect(couple.headers.get("content-type")).toContain("application/problem+json");
      expect(couple.json.detail).toBe(syncAdminMessages.mappingBusy("CUSTOMER"));
      const uncouple = await harness.demo.app.call("DELETE", `/api/companies/${company}/sync/couplings/CUSTOMER/K00000`);
      expect(uncouple.status).toBe(409);
    } finally {
      await release();
    }
    expect(await harness.couplingOf(company, "CUSTOMER", "K00002")).toBeUndefined();
    expect(await harness.couplingOf(company, "CUSTOMER", "K00000")).toBeDefined();
  });

  it("a hand coupling sent during a real run is either refused or kept: never one customer twice", { timeout: 60_000 }, async () => {
    const company = await harness.enabledCompany();
    await customers(company, 300);
    const chosenId = await adminsAccount(company);
    const run = harness.run(company, "CUSTOMER");
    for (let waited = 0; !(await harness.demo.app.services.sync.mapping(company, "CUSTOMER"))!.value.runLeaseOwner; waited += 20) {
      if (waited > 20_000) throw new Error("The run never took the mapping.");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const during = await harness.demo.app.call("PUT", `/api/companies/${company}/sync/couplings/CUSTOMER/K00299`, { body: { crmId: chosenId } });
    await run;
    expect([200, 409], during.text).toContain(during.status);
    const coupling = (await harness.couplingOf(company, "CUSTOMER", "K00299"))!;
    const madeByRun = harness.demo.simulator.store.rows("accounts").filter((row) => row.name === `${company} Customer 299`);
    if (during.status === 200) {
      expect(coupling.crmId).toBe(chosenId);
      expect(madeByRun).toHaveLength(0);
    } else {
      expect(coupling.crmId).toBe(madeByRun[0]!.accountid);
      expect(madeByRun).toHaveLength(1);
    }
    // The admin's account was not imported into the ERP as a customer of its own.
    expect(
      (await harness.demo.app.services.couplings.load(company, "CUSTOMER")).filter((candidate) => candidate.crmId === chosenId).length,
    ).toBeLessThanOrEqual(1);
    expect((await harness.demo.app.services.couplings.load(company, "CUSTOMER")).some((candidate) => candidate.erpId.startsWith("CRM-"))).toBe(false);

    // Between runs the admin's choice stands: the next run keeps it and writes the ERP record's name to it.
    if (during.status === 409) expect((await harness.demo.app.call("DELETE", `/api/companies/${company}/sync/couplings/CUSTOMER/K00299`)).status).toBe(204);
    const between = await harness.demo.app.call("PUT", `/api/companies/${company}/sync/couplings/CUSTOMER/K00299`, { body: { crmId: chosenId } });
    expect([200]).toContain(between.status);
    await harness.put(company, "customers", [{ id: "K00299", name: `${company} Customer 299 renamed` }]);
    await harness.run(company, "CUSTOMER");
    expect((await harness.couplingOf(company, "CUSTOMER", "K00299"))!.crmId).toBe(chosenId);
    expect(harness.crmRow("accounts", chosenId)!.name).toBe(`${company} Customer 299 renamed`);
  });
});
