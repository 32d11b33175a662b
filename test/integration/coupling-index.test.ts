import { describe, expect, it } from "vitest";
import { syncAdminMessages } from "../../src/lib/sync/sync-admin";
import { useSyncHarness } from "../support/sync-harness";

// Couplings looked up by key (ERP id, or CRM id through the index) rather than read whole.
const harness = useSyncHarness();
const couplings = () => harness.demo.app.services.couplings;

async function customers(company: string, count: number): Promise<void> {
  await harness.put(
    company,
    "customers",
    Array.from({ length: count }, (_, index) => ({ id: `K${String(index).padStart(4, "0")}`, name: `${company} Customer ${index}` })),
  );
}

describe("the CRM id index of couplings", () => {
  it("finds a coupling by its CRM id, and nothing through an index row a later coupling made stale", async () => {
    const company = await harness.enabledCompany();
    await customers(company, 3);
    await harness.run(company, "CUSTOMER");
    const [k0, k1] = await Promise.all(["K0000", "K0001"].map(async (id) => (await harness.couplingOf(company, "CUSTOMER", id))!));
    const found = await couplings().byCrmIds(company, "CUSTOMER", [k0!.crmId.toUpperCase(), k1!.crmId]);
    expect([...found.entries()].map(([crmId, coupling]) => [crmId, coupling.erpId])).toEqual(
      expect.arrayContaining([
        [k0!.crmId.toLowerCase(), "K0000"],
        [k1!.crmId.toLowerCase(), "K0001"],
      ]),
    );
    // K0000 uncoupled, then coupled by hand to K0001's old row after K0001 is uncoupled: the old index rows say nothing.
    expect((await harness.demo.app.call("DELETE", `/api/companies/${company}/sync/couplings/CUSTOMER/K0000`)).status).toBe(204);
    expect((await couplings().byCrmIds(company, "CUSTOMER", [k0!.crmId])).size).toBe(0);
    expect((await harness.demo.app.call("DELETE", `/api/companies/${company}/sync/couplings/CUSTOMER/K0001`)).status).toBe(204);
    expect((await harness.demo.app.call("PUT", `/api/companies/${company}/sync/couplings/CUSTOMER/K0000`, { body: { crmId: k1!.crmId } })).status).toBe(200);
    const moved = await couplings().byCrmIds(company, "CUSTOMER", [k1!.crmId, k0!.crmId]);
    expect([...moved.values()].map((coupling) => coupling.erpId)).toEqual(["K0000"]);
    // A hand coupling to a row coupled to another record is refused, found through the index.
    const k2 = (await harness.couplingOf(company, "CUSTOMER", "K0002"))!;
    const refused = await harness.demo.app.call("PUT", `/api/companies/${company}/sync/couplings/CUSTOMER/K0001`, { body: { crmId: k2.crmId } });
    expect(refused.status).toBe(409);
    expect(refused.json.detail).toBe(syncAdminMessages.crmAlreadyCoupled(k2.crmId.toLowerCase(), "K0002"));
  });

  it("couplings written before the index get their index rows from the next run, once", async () => {
    const company = await harness.enabledCompany();
    await customers(company, 20);
    await harness.run(company, "CUSTOMER");
    // As left by the code before the index: no index rows, no mark on the mapping.
    const table = await harness.demo.app.services.tables.table("couplings");
    for await (const row of table.listEntities({
      queryOptions: { filter: `PartitionKey ge '${company}~CUSTOMER!crm~' and PartitionKey lt '${company}~CUSTOMER!crm~~'` },
    }))
      await table.deleteEntity(String(row.partitionKey), String(row.rowKey));
    const stored = (await harness.demo.app.services.sync.mapping(company, "CUSTOMER"))!;
    const { crmIdIndexed: _indexed, ...before } = stored.value;
    await harness.demo.app.services.sync.saveMapping(before, stored.etag);
    const k5 = (await harness.couplingOf(company, "CUSTOMER", "K0005"))!;
    // Not indexed yet: the admin path reads the mapping whole and still finds it.
    const early = await harness.demo.app.call("PUT", `/api/companies/${company}/sync/couplings/CUSTOMER/K0006`, { body: { crmId: k5.crmId } });
    expect(early.status).toBe(409);

    await harness.put(company, "customers", [{ id: "K0001", name: `${company} Customer 1 renamed` }]);
    await harness.run(company, "CUSTOMER");
    expect((await harness.demo.app.services.sync.mapping(company, "CUSTOMER"))!.value.crmIdIndexed).toBe(true);
    expect((await couplings().byCrmIds(company, "CUSTOMER", [k5.crmId])).get(k5.crmId.toLowerCase())?.erpId).toBe("K0005");
  });

  it("an admin reads as many coupling rows as the request names, whatever the size of the mapping", async () => {
    const company = await harness.enabledCompany();
    await customers(company, 400);
    await harness.run(company, "CUSTOMER");
    const storage = harness.demo.app.storage;
    const k7 = (await harness.couplingOf(company, "CUSTOMER", "K0007"))!;
    storage.reset();
    const one = await harness.demo.app.call("GET", `/api/companies/${company}/sync/couplings?mapping=CUSTOMER&crmId=${k7.crmId}`);
    expect(one.json.value.map((coupling: { erpId: string }) => coupling.erpId)).toEqual(["K0007"]);
    const byCrm = storage.to("couplings").length;
    storage.reset();
    await harness.demo.app.call("GET", `/api/companies/${company}/sync/couplings?mapping=CUSTOMER&erpId=K0009`);
    const byErp = storage.to("couplings").length;
    // An index row, the coupling it names and the manifests' partition; a point read and the manifests.
    expect(byCrm).toBeLessThanOrEqual(4);
    expect(byErp).toBeLessThanOrEqual(3);
    // A page of 10 reads a query per bucket, never the whole mapping, and pages go on in ERP id order.
    storage.reset();
    const first = await harness.demo.app.call("GET", `/api/companies/${company}/sync/couplings?mapping=CUSTOMER&top=10`);
    expect(storage.to("couplings").length).toBeLessThanOrEqual(17);
    expect(first.json.value.map((coupling: { erpId: string }) => coupling.erpId)).toEqual(Array.from({ length: 10 }, (_, index) => `K000${index}`));
    const second = await harness.demo.app.call(
      "GET",
      `/api/companies/${company}/sync/couplings?mapping=CUSTOMER&top=10&continuationToken=${first.json.continuationToken}`,
    );
    expect(second.json.value[0].erpId).toBe("K0010");
    storage.reset();
    expect((await harness.demo.app.call("DELETE", `/api/companies/${company}/sync/couplings/CUSTOMER/K0011`)).status).toBe(204);
    expect(storage.to("couplings").filter((request) => request.method === "GET").length).toBeLessThanOrEqual(6);
    // Synchronize one record now: its coupling by key (and the manifests), not the mapping's 16 partitions.
    await harness.put(company, "customers", [{ id: "K0012", name: `${company} Customer 12 renamed` }]);
    storage.reset();
    const synchronized = await harness.demo.app.call("POST", `/api/companies/${company}/sync/couplings/CUSTOMER/K0012/synchronize`, { body: {} });
    expect(synchronized.status, synchronized.text).toBe(200);
    // The mapping's own couplings by key; its lookups' mappings (currency, owner, primary contact) are still read whole.
    const customerReads = storage
      .to("couplings")
      .map((request) => decodeURIComponent(request.url))
      .filter((url) => url.includes("~CUSTOMER"));
    expect(customerReads.some((url) => url.includes("PartitionKey ge"))).toBe(false);
    expect(customerReads.length).toBeLessThanOrEqual(6);
    const k12 = (await harness.couplingOf(company, "CUSTOMER", "K0012"))!;
    expect(harness.crmRow("accounts", k12.crmId)!.name).toBe(`${company} Customer 12 renamed`);
  });

  it("a scheduled run with a few changes reads the couplings of those records, never the whole mapping", async () => {
    const company = await harness.enabledCompany();
    await customers(company, 400);
    await harness.run(company, "CUSTOMER");
    // The second run starts change tracking from the full list; from then on runs read by key.
    await harness.run(company, "CUSTOMER");
    const k3 = (await harness.couplingOf(company, "CUSTOMER", "K0003"))!;
    await harness.put(company, "customers", [
      { id: "K0001", name: `${company} Customer 1 renamed` },
      { id: "K0400", name: `${company} Customer 400` },
    ]);
    expect((await harness.jane("PATCH", `accounts(${k3.crmId})`, { body: { telephone1: "+47 555 0103" } })).status).toBe(204);
    const storage = harness.demo.app.storage;
    storage.reset();
    const result = await harness.run(company, "CUSTOMER");
    const reads = storage
      .to("couplings")
      .map((request) => decodeURIComponent(request.url))
      .filter((url) => url.includes("~CUSTOMER"));
    expect(
      reads.some((url) => url.includes(`PartitionKey ge '${company}~CUSTOMER~'`)),
      reads.join("\n"),
    ).toBe(false);
    expect(result.logs.find((log) => log.direction === "toCrm")).toMatchObject({ inserted: 1, modified: 1, failed: 0 });
    expect((await harness.erp(company, "customers", "K0003"))!.phoneNo).toBe("+47 555 0103");
    expect(harness.crmRow("accounts", (await harness.couplingOf(company, "CUSTOMER", "K0001"))!.crmId)!.name).toBe(`${company} Customer 1 renamed`);
    expect((await harness.couplingOf(company, "CUSTOMER", "K0400"))!.pending).toBe(false);
  });
});
