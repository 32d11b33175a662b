import { describe, expect, it } from "vitest";
import { JobRunner } from "../../src/lib/sync/job-runner";
import { syncMessages } from "../../src/lib/model/sync-plan";
import { useSyncHarness } from "../support/sync-harness";

// Each situation of issue "Synchronization that never loses or corrupts data", replayed over HTTP: ERP
// edits through the ERP records API, CRM edits through the simulated Web API as a salesperson.
const harness = useSyncHarness();
const { jane, admin, enabledCompany, put, erp, run, couplingOf, crmRow } = harness;

describe("field-level changes and conflicts", () => {
  it("keeps a CRM edit when the ERP then edits another field, and never wipes a field the ERP record does not carry", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} Contoso`, city: "Oslo" }]);
    await run(company, "CUSTOMER");
    const accountId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    expect((await jane("PATCH", `accounts(${accountId})`, { body: { telephone1: "+47 555 0100", address1_city: "Bergen" } })).status).toBe(204);
    // The ERP record is replaced with one that does not carry a phone number, and a new name.
    await put(company, "customers", [{ id: "C1", name: `${company} Contoso AS`, city: "Oslo" }]);
    const result = await run(company, "CUSTOMER");
    expect(result.logs.every((log) => log.failed === 0)).toBe(true);
    expect(crmRow("accounts", accountId)).toMatchObject({ name: `${company} Contoso AS`, telephone1: "+47 555 0100", address1_city: "Bergen" });
    expect(await erp(company, "customers", "C1")).toMatchObject({ name: `${company} Contoso AS`, phoneNo: "+47 555 0100", city: "Bergen" });
    // Settled: the next run writes nothing.
    const quiet = await run(company, "CUSTOMER");
    expect(quiet.logs.every((log) => log.inserted === 0 && log.modified === 0 && log.failed === 0)).toBe(true);
  });

  it("resolves a conflict by the mapping's rule, or by hand from the conflict list", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [
      { id: "C1", name: `${company} One` },
      { id: "C2", name: `${company} Two` },
    ]);
    await run(company, "CUSTOMER");
    const one = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    const two = (await couplingOf(company, "CUSTOMER", "C2"))!.crmId;
    expect(
      (
        await harness.demo.app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, {
          body: { updateConflictResolution: "getUpdateFromIntegration" },
        })
      ).status,
    ).toBe(200);
    await put(company, "customers", [
      { id: "C1", name: "ERP name" },
      { id: "C2", name: `${company} Two` },
    ]);
    await jane("PATCH", `accounts(${one})`, { body: { name: "CRM name" } });
    await run(company, "CUSTOMER");
    expect((await erp(company, "customers", "C1"))!.name).toBe("CRM name");
    expect(crmRow("accounts", one)!.name).toBe("CRM name");

    await harness.demo.app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { body: { updateConflictResolution: "none" } });
    await put(company, "customers", [
      { id: "C1", name: "CRM name" },
      { id: "C2", name: "ERP two" },
    ]);
    await jane("PATCH", `accounts(${two})`, { body: { name: "CRM two" } });
    await run(company, "CUSTOMER");
    const [listed] = (await harness.demo.app.call("GET", `/api/companies/${company}/sync/conflicts`)).json.value;
    expect(listed).toMatchObject({ erpId: "C2", crmId: two, conflicts: [{ erpField: "name", erpValue: "ERP two", crmValue: "CRM two" }] });
    const resolved = await harness.demo.app.call("POST", `/api/companies/${company}/sync/conflicts/${listed.id}/resolve`, { body: { keep: "erp" } });
    expect(resolved.status).toBe(200);
    expect(crmRow("accounts", two)!.name).toBe("ERP two");
    expect((await harness.demo.app.call("GET", `/api/companies/${company}/sync/conflicts`)).json.value).toEqual([]);
    expect((await harness.demo.app.call("POST", `/api/companies/${company}/sync/conflicts/${listed.id}/resolve`, { body: { keep: "sideways" } })).status).toBe(
      400,
    );
  });
});

describe("lookups wait for their target", () => {
  it("synchronizes a contact's company first, even when the contact job runs first", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} Parent` }]);
    await put(company, "contacts", [{ id: "P1", firstName: "Pat", surname: company, companyNo: "C1" }]);
    const result = await run(company, "CONTACT");
    expect(result.logs.find((log) => log.direction === "toCrm")).toMatchObject({ inserted: 1, failed: 0 });
    const contactId = (await couplingOf(company, "CONTACT", "P1"))!.crmId;
    const accountId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    expect(crmRow("contacts", contactId)!._parentcustomerid_value).toBe(accountId);
  });

  it("defers a record whose target cannot be synchronized, says why, and repairs it once the target is coupled", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} Blocked`, blocked: "All" }]);
    await put(company, "contacts", [{ id: "P1", firstName: "Pat", surname: company, companyNo: "C1" }]);
    const first = await run(company, "CONTACT");
    const toCrm = first.logs.find((log) => log.direction === "toCrm")!;
    expect(toCrm).toMatchObject({ inserted: 0, failed: 1 });
    expect((await harness.demo.app.services.syncLog.errors(company, toCrm.id)).errors[0]!.reason).toBe(syncMessages.notCoupledTarget("companyNo", "C1"));
    expect(harness.demo.simulator.store.rows("contacts").some((row) => row.lastname === company)).toBe(false);
    // Unblocked: the next runs, in any order, repair it with no user action.
    await put(company, "customers", [{ id: "C1", name: `${company} Blocked`, blocked: "" }]);
    await run(company, "CONTACT");
    const contactId = (await couplingOf(company, "CONTACT", "P1"))!.crmId;
    expect(crmRow("contacts", contactId)!._parentcustomerid_value).toBe((await couplingOf(company, "CUSTOMER", "C1"))!.crmId);
  });

  it("sends an invoice's customer and an item's unit of measure once they are coupled, never null", async () => {
    const company = await enabledCompany();
    await put(company, "unitsOfMeasure", [{ id: "PCS", description: "Pieces" }]);
    await put(company, "items", [{ id: `${company}-I1`, description: "Bolt", unitOfMeasure: "PCS" }]);
    await put(company, "customers", [{ id: "C1", name: `${company} Buyer` }]);
    await put(company, "postedSalesInvoices", [{ id: "INV1", customerNo: "C1", amount: 10 }]);
    await run(company, "ITEM-PRODUCT");
    await run(company, "POSTEDSALESINV-INV");
    const product = crmRow("products", (await couplingOf(company, "ITEM-PRODUCT", `${company}-I1`))!.crmId)!;
    expect(product._defaultuomscheduleid_value).toBe((await couplingOf(company, "UNIT OF MEASURE", "PCS"))!.crmId);
    const invoice = crmRow("invoices", (await couplingOf(company, "POSTEDSALESINV-INV", "INV1"))!.crmId)!;
    expect(invoice._customerid_value).toBe((await couplingOf(company, "CUSTOMER", "C1"))!.crmId);
  });
});

describe("records born in CRM, deletions, filters", () => {
  it("keeps a CRM-born product's number as the item's number, also after an ERP edit", async () => {
    const company = await enabledCompany();
    const number = `P-${company.slice(-6)}`;
    expect((await admin("POST", "products", { body: { name: "CRM widget", productnumber: number, producttypecode: 1 } })).status).toBe(204);
    await run(company, "ITEM-PRODUCT");
    expect(await erp(company, "items", number)).toMatchObject({ id: number, description: "CRM widget" });
    await put(company, "items", [{ id: number, description: "ERP widget", unitPrice: 5 }]);
    await run(company, "ITEM-PRODUCT");
    const product = harness.demo.simulator.store.rows("products").find((row) => row.productnumber === number)!;
    expect(product).toMatchObject({ name: "ERP widget", price: 5, productnumber: number });
  });

  it("notices a CRM deletion on the next run without an ERP edit, and follows the deletion rule", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [
      { id: "C1", name: `${company} Gone` },
      { id: "C2", name: `${company} Restored` },
    ]);
    await run(company, "CUSTOMER");
    const gone = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    expect((await admin("DELETE", `accounts(${gone})`)).status).toBe(204);
    const result = await run(company, "CUSTOMER");
    const fromCrm = result.logs.find((log) => log.direction === "fromCrm")!;
    expect(fromCrm.failed).toBe(1);
    expect((await harness.demo.app.services.syncLog.errors(company, fromCrm.id)).errors[0]!.reason).toBe(syncMessages.coupledToDeletedCrm("accounts"));

    await harness.demo.app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { body: { deletionConflictResolution: "restoreRecords" } });
    const restored = (await couplingOf(company, "CUSTOMER", "C2"))!.crmId;
    await admin("DELETE", `accounts(${restored})`);
    await run(company, "CUSTOMER");
    expect(crmRow("accounts", restored)).toMatchObject({ name: `${company} Restored` });
    expect(crmRow("accounts", gone)).toMatchObject({ name: `${company} Gone` }); // retried from the list, now restored too
  });

  it("does not send a customer blocked for everything", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [
      { id: "C1", name: `${company} Blocked`, blocked: "All" },
      { id: "C2", name: `${company} Shipping only`, blocked: "Ship" },
    ]);
    await run(company, "CUSTOMER");
    expect(await couplingOf(company, "CUSTOMER", "C1")).toBeUndefined();
    expect(await couplingOf(company, "CUSTOMER", "C2")).toBeDefined();
  });

  it("couples salespeople by email, never makes one for integration, disabled, unlicensed or application users, and no duplicate on a second full sync", async () => {
    const company = await enabledCompany();
    await put(company, "salespeople", [{ id: "JS", name: "Jane S.", email: "JANE@demo.example" }]);
    for (let round = 0; round < 2; round++) {
      await harness.demo.app.call("POST", `/api/companies/${company}/sync/full`);
      await harness.demo.app.host.processQueues();
    }
    const people = (await harness.demo.app.call("GET", `/api/companies/${company}/erp/salespeople?top=100`)).json.value as {
      id: string;
      email?: string;
      name?: string;
    }[];
    const emails = people.map((person) => (person.email ?? "").toLowerCase()).sort();
    expect(new Set(emails).size).toBe(emails.length);
    expect(people.find((person) => person.id === "JS")).toMatchObject({ name: "Jane Seller" });
    expect(emails).not.toContain("disabled@demo.example");
    expect(emails).not.toContain("unlicensed@demo.example");
    expect(people.some((person) => (person.name ?? "").startsWith("#"))).toBe(false);
  });
});

describe("retries, skipped records and failed runs", () => {
  it("retries a failed record on later runs, skips it after the maximum attempts, and restores it on request", async () => {
    const company = await enabledCompany();
    await harness.demo.app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { body: { maxAttempts: 2 } });
    await put(company, "customers", [{ id: "C1", name: `${company} Short` }]);
    await run(company, "CUSTOMER");
    const accountId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    // 150 characters fit CRM (160) but not the ERP (100): the ERP refuses the change.
    await jane("PATCH", `accounts(${accountId})`, { body: { name: `${company} ${"x".repeat(140)}` } });
    await run(company, "CUSTOMER");
    expect((await harness.demo.app.call("GET", `/api/companies/${company}/sync/skipped`)).json.value).toEqual([]);
    const second = await run(company, "CUSTOMER"); // retried although the CRM watermark passed the row
    expect(second.logs.find((log) => log.direction === "fromCrm")!.failed).toBe(1);
    const [skipped] = (await harness.demo.app.call("GET", `/api/companies/${company}/sync/skipped`)).json.value;
    expect(skipped).toMatchObject({ erpId: "C1", kind: "skipped", attempts: 2, reason: expect.stringContaining("name") });
    const third = await run(company, "CUSTOMER"); // skipped: no longer retried
    expect(third.logs.every((log) => log.failed === 0)).toBe(true);
    await jane("PATCH", `accounts(${accountId})`, { body: { name: `${company} Fixed` } });
    const restored = await harness.demo.app.call("POST", `/api/companies/${company}/sync/skipped/${skipped.id}/retry`);
    expect(restored.status).toBe(200);
    expect((await erp(company, "customers", "C1"))!.name).toBe(`${company} Fixed`);
    expect((await harness.demo.app.call("GET", `/api/companies/${company}/sync/skipped`)).json.value).toEqual([]);
  });

  it("writes a log row for a failed run and shows the failure in the status", async () => {
    const company = await enabledCompany();
    harness.demo.simulator.addFault({ path: /^accounts/, method: "GET", status: 500, times: 1, message: "Generic SQL error." });
    expect(await harness.demo.app.services.jobs.runJob(company, "CUSTOMER")).toBe("processed");
    const log = (await harness.demo.app.call("GET", `/api/companies/${company}/sync/log?mapping=CUSTOMER`)).json.value;
    expect(log[0]).toMatchObject({ mapping: "CUSTOMER", message: expect.stringMatching(/^The run failed: .*Generic SQL error\./) });
    const status = (await harness.demo.app.call("GET", `/api/companies/${company}/connection/status`)).json;
    expect(status.lastSyncPerMapping.find((entry: { mapping: string }) => entry.mapping === "CUSTOMER").lastSyncResult).toMatch(
      /^Failed: .*Generic SQL error\./,
    );
  });
});

describe("the job queue under concurrency and crashes", () => {
  const slowly = async <T>(work: () => Promise<T>) => {
    harness.demo.simulator.latencyMs = 60;
    try {
      return await work();
    } finally {
      harness.demo.simulator.latencyMs = 0;
    }
  };

  it("Hold then Ready on a running job takes effect when the run ends; a second worker never starts beside it", async () => {
    const company = await enabledCompany();
    const customers = Array.from({ length: 300 }, (_, index) => ({ id: `C${index}`, name: `${company} ${index}` }));
    await put(company, "customers", customers);
    const services = harness.demo.app.services;
    // The run is held open until the test has done its status changes (a run still going, whatever the machine's speed).
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const gatedRunner = {
      runMapping: async (...args: Parameters<typeof services.runner.runMapping>) => (await gate, services.runner.runMapping(...args)),
    } as typeof services.runner;
    const workerA = new JobRunner({ sync: services.sync, setups: services.setups, runner: gatedRunner, queue: services.queue, config: services.config });
    const workerB = new JobRunner({ sync: services.sync, setups: services.setups, runner: services.runner, queue: services.queue, config: services.config });
    const running = workerA.runJob(company, "CUSTOMER");
    for (let wait = 0; (await services.sync.job(company, "CUSTOMER"))!.value.status !== "In Process" && wait < 100; wait++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await harness.demo.app.call("POST", `/api/companies/${company}/sync/jobs/CUSTOMER/hold`)).json).toMatchObject({
      status: "In Process",
      requestedStatus: "On Hold",
    });
    expect((await harness.demo.app.call("POST", `/api/companies/${company}/sync/jobs/CUSTOMER/ready`)).json).toMatchObject({
      status: "In Process",
      requestedStatus: "Ready",
    });
    expect(await workerB.runJob(company, "CUSTOMER")).toBe("yielded");
    release();
    expect(await running).toBe("processed");
    expect((await services.sync.job(company, "CUSTOMER"))!.value).toMatchObject({ status: "Ready" });
    // (Accounts other tests' salespeople edited in the shared organization come in as CRM-born customers.)
    const couplings = (await services.couplings.load(company, "CUSTOMER")).filter((coupling) => /^C\d+$/.test(coupling.erpId));
    expect(couplings).toHaveLength(300);
    expect(new Set(couplings.map((coupling) => coupling.crmId)).size).toBe(300);
    expect(harness.demo.simulator.store.rows("accounts").filter((row) => String(row.name).startsWith(`${company} `))).toHaveLength(300);
  });

  it("a full synchronization started while a job runs waits for it, and leaves the job Ready, not In Process", async () => {
    const company = await enabledCompany();
    await put(
      company,
      "customers",
      Array.from({ length: 100 }, (_, index) => ({ id: `C${index}`, name: `${company} ${index}` })),
    );
    const services = harness.demo.app.services;
    await slowly(async () => {
      const job = services.jobs.runJob(company, "CUSTOMER");
      await new Promise((resolve) => setTimeout(resolve, 100));
      const full = services.jobs.runFull(company, "full-run");
      await Promise.all([job, full]);
    });
    const jobs = (await harness.demo.app.call("GET", `/api/companies/${company}/sync/jobs`)).json;
    expect(jobs.value.find((entry: { id: string }) => entry.id === "CUSTOMER")).toMatchObject({ status: "Ready" });
    expect(jobs.activeScheduledSyncJobs.text).toBe("11 of 12");
    expect(harness.demo.simulator.store.rows("accounts").filter((row) => String(row.name).startsWith(`${company} `))).toHaveLength(100);
  });

  it("a full synchronization that dies midway holds the jobs only until its expiry; then the timers run them again", async () => {
    const company = await enabledCompany();
    const services = harness.demo.app.services;
    // A worker whose mapping runs never return: the process died in the middle of the full synchronization.
    const dead = new JobRunner({
      sync: services.sync,
      setups: services.setups,
      runner: { runMapping: () => new Promise(() => {}) } as never,
      queue: services.queue,
      config: services.config,
    });
    void dead.runFull(company, "dead-run");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await harness.demo.app.call("GET", `/api/companies/${company}/sync/jobs`)).json.activeScheduledSyncJobs.text).toBe("0 of 12");
    expect(await services.jobs.runJob(company, "CUSTOMER")).toBe("yielded");
    const later = new JobRunner({
      sync: services.sync,
      setups: services.setups,
      runner: services.runner,
      queue: services.queue,
      config: services.config,
      clock: () => new Date(Date.now() + 3 * 3600_000),
    });
    expect(await later.runJob(company, "CUSTOMER")).toBe("processed");
  });

  it("20 default setups at once: one installs, the others are told to wait; nothing breaks", async () => {
    const company = await enabledCompany();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => harness.demo.app.call("POST", `/api/companies/${company}/sync/default-setup`, { body: { confirm: true } })),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.every((status) => status === 200 || status === 409)).toBe(true);
    expect(statuses).toContain(200);
    expect(statuses).toContain(409);
    const mappings = (await harness.demo.app.call("GET", `/api/companies/${company}/sync/mappings`)).json.value;
    expect(mappings).toHaveLength(11);
    expect((await harness.demo.app.call("GET", `/api/companies/${company}/sync/jobs`)).json.value).toHaveLength(12);
  });

  it("refuses job actions while the connection is disabled", async () => {
    const company = await enabledCompany();
    await harness.demo.app.call("POST", `/api/companies/${company}/connection/disable`, { body: { reason: "Maintenance" } });
    for (const action of ["hold", "ready", "run"]) {
      const response = await harness.demo.app.call("POST", `/api/companies/${company}/sync/jobs/CUSTOMER/${action}`);
      expect(response.status, action).toBe(409);
    }
    expect((await harness.demo.app.call("POST", `/api/companies/${company}/sync/full`)).status).toBe(409);
  });
});

describe("what the API stores and shows", () => {
  it("refuses ERP ids a route cannot address, and shows no storage endpoint in job answers or rows", async () => {
    const company = await enabledCompany();
    for (const id of ["..", ".", "a/b", "a?b", "a#b", "a%2Fb"]) {
      const response = await harness.demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: [{ id, name: "x" }] });
      expect(response.status, id).toBe(400);
      expect(response.json.errors[0].path).toBe("[0].id");
    }
    const held = await harness.demo.app.call("POST", `/api/companies/${company}/sync/jobs/CUSTOMER/hold`);
    expect(held.text).not.toMatch(/odata|127\.0\.0\.1|devstoreaccount/);
    const jobs = await harness.demo.app.call("GET", `/api/companies/${company}/sync/jobs`);
    expect(jobs.text).not.toMatch(/odata\.metadata|devstoreaccount/);
    const stored = await harness.demo.app.services.sync.job(company, "CUSTOMER");
    expect(Object.keys(stored!.value).some((key) => key.includes("odata"))).toBe(false);
  });
});
