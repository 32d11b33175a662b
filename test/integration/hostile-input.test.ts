import { describe, expect, it } from "vitest";
import { connectionMessages } from "../../src/lib/connection/messages";
import { inputMessages } from "../../src/lib/errors";
import { issueKey } from "../../src/lib/model/sync-issue";
import { syncAdminMessages } from "../../src/lib/sync/sync-admin";
import { useSyncHarness } from "../support/sync-harness";

// Input a careless or hostile caller sends: every one answers 4xx with problem+json, and nothing is stored.
const harness = useSyncHarness({ simulator: { latencyMs: 20 }, env: { SYNC_BATCH_SIZE: "10", SYNC_MAX_PARALLEL: "1" } });
const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  harness.demo.app.call(method, path, { ...(body !== undefined && { body }), ...(headers && { headers }) });

function expectProblem(response: { status: number; headers: Headers }, status: number): void {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/problem+json");
}

describe("a CRM filter saved while the connection is disabled", () => {
  it("is tried with the stored connection when saved, and again when enabling: a filter Dataverse refuses never reaches a run", async () => {
    const company = await harness.enabledCompany();
    expect((await call("POST", `/api/companies/${company}/connection/disable`, {})).status).toBe(200);
    const saved = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { crmFilter: "shoesize eq 42" });
    expectProblem(saved, 400);
    expect(saved.json.errors[0]).toMatchObject({ path: "crmFilter", message: expect.stringContaining("shoesize") });
    const stored = await harness.demo.app.services.sync.mapping(company, "CUSTOMER");
    expect(JSON.parse(stored!.value.definitionJson).crmFilter).not.toContain("shoesize");

    // One stored before this check existed (or while Dataverse could not be reached): enabling refuses and names it.
    const definition = JSON.parse(stored!.value.definitionJson);
    await harness.demo.app.services.sync.saveMapping(
      { ...stored!.value, definitionJson: JSON.stringify({ ...definition, crmFilter: "shoesize eq 42" }) },
      stored!.etag,
    );
    const enabled = await call("POST", `/api/companies/${company}/connection/enable`, {});
    expectProblem(enabled, 422);
    expect(enabled.json.detail).toBe(connectionMessages.crmFilterRefused);
    expect(enabled.json.errors).toEqual([{ path: "mappings.CUSTOMER.crmFilter", message: expect.stringContaining("shoesize") }]);
    expect((await call("GET", `/api/companies/${company}/connection`)).json.isEnabled).toBe(false);
  });
});

describe("a default setup installed while a job runs", () => {
  it("leaves the running entry its lease and status; the entry takes the new status when its run ends", { timeout: 60_000 }, async () => {
    const company = await harness.enabledCompany();
    await harness.put(
      company,
      "customers",
      Array.from({ length: 200 }, (_, index) => ({ id: `K${index}`, name: `${company} Customer ${index}` })),
    );
    const jobs = harness.demo.app.services.jobs;
    const running = jobs.runJob(company, "CUSTOMER", undefined, true);
    for (let waited = 0; (await harness.demo.app.services.sync.job(company, "CUSTOMER"))!.value.status !== "In Process"; waited += 20) {
      if (waited > 20_000) throw new Error("The job never started.");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const before = (await harness.demo.app.services.sync.job(company, "CUSTOMER"))!.value;
    const reset = await call("POST", `/api/companies/${company}/sync/default-setup`, { confirm: true });
    expect(reset.status, reset.text).toBe(200);
    const during = await call("GET", `/api/companies/${company}/sync/jobs`);
    const entry = during.json.value.find((job: { id: string }) => job.id === "CUSTOMER");
    expect(entry.status).toBe("In Process");
    const stored = (await harness.demo.app.services.sync.job(company, "CUSTOMER"))!.value;
    expect(stored.leaseOwner).toBe(before.leaseOwner);
    expect((await harness.demo.app.services.sync.mapping(company, "CUSTOMER"))!.value.runLeaseOwner).toBeDefined();
    expect(await running).toBe("processed");
    const after = (await harness.demo.app.services.sync.job(company, "CUSTOMER"))!.value;
    expect(after).toMatchObject({ status: "Ready" });
    expect(after.lastError).toBeUndefined();
    expect(after.leaseOwner).toBeUndefined();
  });
});

describe("synchronize one record", () => {
  it("answers 404 for a record that is not there, 409 for one not coupled, 400 for a direction its mapping does not run", async () => {
    const company = await harness.enabledCompany();
    await harness.put(company, "customers", [{ id: "C1", name: `${company} One` }]);
    await harness.put(company, "currencies", [{ id: "EUR", description: "Euro" }]);
    const sync = (mapping: string, id: string, body: unknown = {}) =>
      call("POST", `/api/companies/${company}/sync/couplings/${encodeURIComponent(mapping)}/${encodeURIComponent(id)}/synchronize`, body);
    expectProblem(await sync("CUSTOMER", "NOPE"), 404);
    const uncoupled = await sync("CUSTOMER", "C1");
    expectProblem(uncoupled, 409);
    expect(uncoupled.json.detail).toBe(syncAdminMessages.notCoupledToSynchronize("C1"));
    const currency = await sync("CURRENCY", "EUR", { direction: "fromCrm" });
    expectProblem(currency, 400);
    expect(currency.json.errors[0].path).toBe("direction");
    expectProblem(await sync("SALESPEOPLE", "JS", { direction: "toCrm" }), 400);
    await harness.run(company, "CUSTOMER");
    expect((await sync("CUSTOMER", "C1")).status).toBe(200);
    expect((await sync("CUSTOMER", "C1", { direction: "toCrm" })).status).toBe(200);
  });
});

describe("requests that answered 500", () => {
  it("parallel enables and disables answer 200, 409 or 412 and leave the jobs in one consistent state", { timeout: 60_000 }, async () => {
    const company = await harness.enabledCompany();
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, index) => call("POST", `/api/companies/${company}/connection/${index % 2 === 0 ? "disable" : "enable"}`, {})),
    );
    // No If-Match was sent: a concurrent change is a 409, never a 412.
    for (const answer of answers) expect([200, 409, 422], answer.text).toContain(answer.status);
    const view = (await call("GET", `/api/companies/${company}/connection`)).json;
    const jobs = (await call("GET", `/api/companies/${company}/sync/jobs`)).json.value as { id: string; status: string }[];
    const mappingJobs = jobs.filter((job) => job.id !== "CUSTOMER STATISTICS");
    if (view.isEnabled) expect(mappingJobs.every((job) => job.status === "Ready")).toBe(true);
    else expect(mappingJobs.every((job) => job.status === "On Hold")).toBe(true);
  });

  it("match with a field named twice, an ERP filter field named __proto__, ids holding / or .., a 100 kB query string", async () => {
    const company = await harness.enabledCompany();
    const twice = await call("POST", `/api/companies/${company}/sync/mappings/CUSTOMER/match`, { fields: ["name", "name"] });
    expectProblem(twice, 400);
    expect(twice.json.errors).toEqual([{ path: "fields.1", message: "names the field of fields.0 again" }]);
    for (const field of ["__proto__", "constructor", "toString"]) {
      const proto = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { erpFilter: [{ field, op: "eq", value: "x" }] });
      expectProblem(proto, 400);
      expect(proto.json.errors[0].path).toBe("erpFilter.0.field");
    }
    const started = Date.now();
    for (const id of [issueKey("../x", "erp", "1"), issueKey("a/b", "erp", "1"), issueKey("CUSTOMER", "erp", "a/b"), "a%2Fb", "..%2F..", "%2E%2E"]) {
      expectProblem(await call("POST", `/api/companies/${company}/sync/conflicts/${id}/resolve`, { keep: "erp" }), 404);
      expectProblem(await call("POST", `/api/companies/${company}/sync/skipped/${id}/retry`, {}), 404);
      expectProblem(await call("GET", `/api/companies/${company}/sync/log/${id}/errors`), 404);
    }
    // Refused at once, not after the storage client's retries.
    expect(Date.now() - started).toBeLessThan(5_000);
    const long = await fetch(`${harness.demo.app.url}/api/companies/${company}/sync/log?mapping=${"x".repeat(100_000)}`);
    expect(long.status).toBe(431);
    expect(long.headers.get("content-type")).toContain("application/problem+json");
    expect((await long.json()).status).toBe(431);
  });
});

describe("input kept that should not be", () => {
  it("refuses NUL and bidirectional overrides, a modifiedSince that is no time, and If-None-Match: * on a mapping; nothing stored", async () => {
    const company = await harness.enabledCompany();
    const before = await call("GET", `/api/companies/${company}/sync/mappings`);
    for (const crmFilter of ["name eq 'a\u0000b'", "name eq 'a\u202eb'"]) {
      const filter = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { crmFilter });
      expectProblem(filter, 400);
      expect(filter.json.errors).toEqual([{ path: "crmFilter", message: inputMessages.hiddenCharacters }]);
    }
    for (const reason of ["Maintenance\u0000", "Main\u202etenance", "Main\u2066tenance"]) {
      const disable = await call("POST", `/api/companies/${company}/connection/disable`, { reason });
      expectProblem(disable, 400);
      expect(disable.json.errors[0]).toEqual({ path: "reason", message: inputMessages.hiddenCharacters });
    }
    expect((await call("GET", `/api/companies/${company}/connection`)).json.isEnabled).toBe(true);
    for (const modifiedSince of ["abc", "2026-13-45T99:99:99Z", "2026-11-26", "0"]) {
      const read = await call("GET", `/api/companies/${company}/erp/customers?modifiedSince=${encodeURIComponent(modifiedSince)}`);
      expectProblem(read, 400);
      expect(read.json.errors[0].path).toBe("modifiedSince");
    }
    await harness.put(company, "customers", [{ id: "C1", name: `${company} One` }]);
    const all = await call("GET", `/api/companies/${company}/erp/customers?modifiedSince=2000-01-01T00:00:00Z`);
    expect(all.json.value.map((record: { id: string }) => record.id)).toEqual(["C1"]);
    const stamp = all.json.value[0].modifiedAt as string;
    expect((await call("GET", `/api/companies/${company}/erp/customers?modifiedSince=${encodeURIComponent(stamp)}`)).json.value).toEqual([]);
    const created = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { maxAttempts: 3 }, { "if-none-match": "*" });
    expectProblem(created, 412);
    expect((await call("GET", `/api/companies/${company}/sync/mappings`)).json).toEqual(before.json);
    // If-Match with a list matches when any of its ETags does.
    const etag = before.json.value.find((mapping: { name: string }) => mapping.name === "CUSTOMER").etag as string;
    expect((await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { maxAttempts: 3 }, { "if-match": `W/"stale", ${etag}` })).status).toBe(
      200,
    );
    expectProblem(await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { maxAttempts: 4 }, { "if-match": `W/"stale", ${etag}` }), 412);
  });
});
