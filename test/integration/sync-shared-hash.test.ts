// Runs in which every ERP id shares one hash in the set of ids a run has met (seen-ids.ts): each "maybe met before"
// takes the path for a record an earlier wave wrote. That path must be right for a record met for the first time.
import { describe, expect, it, vi } from "vitest";
import { useSyncHarness } from "../support/sync-harness";

vi.mock("../../src/lib/sync/run/seen-ids", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/lib/sync/run/seen-ids")>();
  class OneHash extends real.SeenIds {
    constructor() {
      super(() => 1);
    }
  }
  return { ...real, SeenIds: OneHash };
});

const harness = useSyncHarness();
const { enabledCompany, put, run, couplingOf, erp, jane } = harness;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const accountsNamed = (prefix: string) => harness.demo.simulator.store.rows("accounts").filter((row) => String(row.name).startsWith(prefix));

describe("a run whose ERP ids all share one hash", () => {
  it("creates each record in CRM once and couples it, and the next run finds nothing to send", async () => {
    const company = await enabledCompany();
    const ids = Array.from({ length: 25 }, (_, index) => `C${index}`);
    await put(
      company,
      "customers",
      ids.map((id) => ({ id, name: `${company} ${id}` })),
    );
    await run(company, "CUSTOMER");
    expect(
      accountsNamed(`${company} `)
        .map((row) => row.name)
        .sort(),
    ).toEqual(ids.map((id) => `${company} ${id}`).sort());
    for (const id of ids) expect((await couplingOf(company, "CUSTOMER", id))?.pending, id).toBe(false);
    await sleep(2100);
    const next = await run(company, "CUSTOMER");
    expect(next.logs.reduce((sum, log) => sum + log.inserted + log.modified + log.failed, 0)).toBe(0);
  });

  it("merges a CRM edit and an ERP change of one record into one write, as without shared hashes", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [
      { id: "A", name: `${company} A` },
      { id: "B", name: `${company} B`, city: "Oslo" },
    ]);
    await run(company, "CUSTOMER");
    await sleep(2100);
    await run(company, "CUSTOMER");
    const crmId = (await couplingOf(company, "CUSTOMER", "B"))!.crmId;
    // A changes first, so B is not the first id of the run's feed; B changes on both sides, in different fields.
    await put(company, "customers", [{ id: "A", name: `${company} A v2` }]);
    expect((await jane("PATCH", `accounts(${crmId})`, { body: { telephone1: "+47 555 0101" } })).status).toBe(204);
    await put(company, "customers", [{ id: "B", name: `${company} B`, city: "Bergen" }]);
    const result = await run(company, "CUSTOMER");
    expect(harness.crmRow("accounts", crmId)).toMatchObject({ address1_city: "Bergen", telephone1: "+47 555 0101" });
    expect(await erp(company, "customers", "B")).toMatchObject({ city: "Bergen", phoneNo: "+47 555 0101" });
    expect(await harness.demo.app.services.syncIssues.list(company, "CUSTOMER")).toEqual([]);
    expect(result.logs.reduce((sum, log) => sum + log.failed, 0)).toBe(0);
  });
});
