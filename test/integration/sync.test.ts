import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CouplingRepository } from "../../src/lib/storage/coupling-repository";
import { SyncRunner } from "../../src/lib/sync/sync-runner";
import { JobRunner, jobMessages } from "../../src/lib/sync/job-runner";
import { syncMessages } from "../../src/lib/model/sync-plan";
import { activeJobMessages } from "../../src/lib/model/active-jobs";
import { type DemoApp, setUpDemoCompany, startDemoApp } from "../support/demo-app";

let demo: DemoApp;
beforeAll(async () => {
  demo = await startDemoApp();
});
afterAll(() => demo.close());

const janeId = "a1b2c3d4-0006-4000-8000-000000000006";

async function enabledCompanyWithDefaultSync(): Promise<string> {
  const company = await setUpDemoCompany(demo);
  const enabled = await demo.app.call("POST", `/api/companies/${company}/connection/enable`, { body: { useDefaultSyncSetup: true } });
  if (enabled.status !== 200) throw new Error(enabled.text);
  return company;
}

const customers = (count: number, prefix: string, extra: Record<string, unknown> = {}) =>
  Array.from({ length: count }, (_, index) => ({
    id: `${prefix}${String(index + 1).padStart(4, "0")}`,
    name: `${prefix} customer ${index + 1}`,
    city: "Oslo",
    ...extra,
  }));

const accountsNamed = (prefix: string) => demo.simulator.store.rows("accounts").filter((row) => String(row.name).startsWith(`${prefix} customer`));

async function runCustomerJobNow(company: string) {
  const response = await demo.app.call("POST", `/api/companies/${company}/sync/jobs/CUSTOMER/run`);
  expect(response.status).toBe(202);
  await demo.app.host.processQueues();
  return response.json.runId as string;
}

describe("scheduled synchronization, as a user meets it", () => {
  it("sends ERP customers to CRM on the next timer run, brings CRM edits back, and logs the counts", async () => {
    const company = await enabledCompanyWithDefaultSync();
    const put = await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(3, company) });
    expect(put.status).toBe(200);

    await demo.app.host.fireTimer("sync-customer");
    await demo.app.host.processQueues();
    const accounts = accountsNamed(company);
    expect(accounts.map((row) => row.name).sort()).toEqual([`${company} customer 1`, `${company} customer 2`, `${company} customer 3`]);
    expect(accounts.every((row) => row.customertypecode === 3 && row.address1_city === "Oslo")).toBe(true);

    const jobs = await demo.app.call("GET", `/api/companies/${company}/sync/jobs`);
    expect(jobs.json.activeScheduledSyncJobs).toEqual({ ready: 11, total: 12, text: "11 of 12", message: activeJobMessages.partlyReady(11, 12) });
    const customerJob = jobs.json.value.find((job: { id: string }) => job.id === "CUSTOMER");
    expect(customerJob).toMatchObject({
      status: "Ready",
      attempts: 0,
      description: "CUSTOMER - Dynamics 365 for Sales synchronization job.",
      minutesBetweenRuns: 2,
      maxAttempts: 10,
      timer: "sync-customer",
    });
    expect(Date.parse(customerJob.nextRunAt) - Date.parse(customerJob.lastRunAt)).toBe(120_000);

    // A salesperson edits an account in CRM; the change flows back to the ERP.
    demo.simulator.store.update("accounts", String(accounts[0]!.accountid), { telephone1: "+47 555 0100" }, janeId);
    const runId = await runCustomerJobNow(company);
    const erp = await demo.app.call("GET", `/api/companies/${company}/erp/customers?top=10`);
    const edited = erp.json.value.find((record: { name: string }) => record.name === accounts[0]!.name);
    expect(edited).toMatchObject({ phoneNo: "+47 555 0100", modifiedBy: "crm-sync" });

    const log = await demo.app.call("GET", `/api/companies/${company}/sync/log?runId=${runId}`);
    expect(log.json.value).toHaveLength(2);
    expect(log.json.value).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ mapping: "CUSTOMER", direction: "fromCrm", modified: 1, failed: 0 }),
        expect.objectContaining({ mapping: "CUSTOMER", direction: "toCrm", inserted: 0, modified: 0, failed: 0 }),
      ]),
    );

    // The ERP copy written by the sync is not sent back to CRM on the next run.
    demo.simulator.resetStats();
    const quietRun = await runCustomerJobNow(company);
    const quiet = (await demo.app.call("GET", `/api/companies/${company}/sync/log?runId=${quietRun}`)).json.value;
    expect(quiet.every((entry: { inserted: number; modified: number }) => entry.inserted === 0 && entry.modified === 0)).toBe(true);
    expect(demo.simulator.stats.byOperation["POST accounts/UpsertMultiple"] ?? 0).toBe(0);
    expect(demo.simulator.stats.byOperation["POST accounts/UpdateMultiple"] ?? 0).toBe(0);
  });

  it("skips companies whose connection is disabled", async () => {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(1, company) });
    await demo.app.call("POST", `/api/companies/${company}/connection/disable`, { body: {} });
    expect(await demo.app.services.jobs.runJob(company, "CUSTOMER")).toBe("skipped");
    expect(accountsNamed(company)).toHaveLength(0);
  });

  it("puts a job On Hold and Ready again through the API", async () => {
    const company = await enabledCompanyWithDefaultSync();
    const held = await demo.app.call("POST", `/api/companies/${company}/sync/jobs/CONTACT/hold`);
    expect(held.json.status).toBe("On Hold");
    expect((await demo.app.call("GET", `/api/companies/${company}/sync/jobs`)).json.activeScheduledSyncJobs.text).toBe("10 of 12");
    expect((await demo.app.call("POST", `/api/companies/${company}/sync/jobs/CONTACT/ready`)).json.status).toBe("Ready");
    expect((await demo.app.call("POST", `/api/companies/${company}/sync/jobs/NOPE/hold`)).status).toBe(404);
  });

  it("runs an On Hold job now without changing its status", async () => {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("POST", `/api/companies/${company}/sync/jobs/CUSTOMER/hold`);
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(1, company) });
    await runCustomerJobNow(company);
    expect(accountsNamed(company)).toHaveLength(1);
    const job = (await demo.app.call("GET", `/api/companies/${company}/sync/jobs`)).json.value.find((entry: { id: string }) => entry.id === "CUSTOMER");
    expect(job).toMatchObject({ status: "On Hold", lastResult: expect.stringContaining("1 inserted") });
  });

  it("shows mappings with direction, filters, field mappings and watermarks", async () => {
    const company = await enabledCompanyWithDefaultSync();
    const mappings = await demo.app.call("GET", `/api/companies/${company}/sync/mappings`);
    expect(mappings.json.value.map((mapping: { name: string }) => mapping.name)).toEqual([
      "SALESPEOPLE",
      "CURRENCY",
      "UNIT OF MEASURE",
      "CUSTOMER",
      "CONTACT",
      "ITEM-PRODUCT",
      "RESOURCE-PRODUCT",
      "CUSTPRCGRP-PRICE",
      "POSTEDSALESINV-INV",
      "SALESPRC-PRODPRICE",
      "POSTEDSALESLINE-INV",
    ]);
    expect(mappings.json.value[3]).toMatchObject({
      direction: "both",
      crmFilter: "statecode eq 0 and customertypecode eq 3",
      minutesBetweenRuns: 2,
      erpWatermark: null,
    });
  });
});

describe("crashes, overlaps and outages", () => {
  it("after a crash between the CRM write and the couplings, a rerun makes no duplicate and loses nothing", async () => {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(5, company) });
    const services = demo.app.services;
    const realCouplings = new CouplingRepository(services.tables);
    let saves = 0;
    const crashing = Object.create(realCouplings) as CouplingRepository;
    // The CRM ids were recorded (the wave's manifest, savePending) and the accounts created; the couplings never are.
    crashing.save = async () => {
      saves++;
      throw new Error("process died");
    };
    const crashingRunner = new SyncRunner({ ...runnerInit(), couplings: crashing });
    await expect(crashingRunner.runMapping(company, "CUSTOMER")).rejects.toThrow("process died");
    expect(accountsNamed(company)).toHaveLength(5);
    expect(saves).toBe(1);
    expect(
      (await realCouplings.load(company, "CUSTOMER")).filter((coupling) => coupling.pending),
      "the ids chosen read as pending couplings",
    ).toHaveLength(5);

    await services.runner.runMapping(company, "CUSTOMER");
    expect(accountsNamed(company)).toHaveLength(5);
    // The simulated organization is shared by every test; look at this company's own customers only.
    const couplings = (await realCouplings.load(company, "CUSTOMER")).filter((coupling) => coupling.erpId.startsWith(company));
    expect(couplings.filter((coupling) => !coupling.pending)).toHaveLength(5);
    expect(new Set(couplings.map((coupling) => coupling.crmId))).toEqual(new Set(accountsNamed(company).map((row) => row.accountid)));
  });

  it("stops at its time budget and the next run continues where it stopped, without duplicates", async () => {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(30, company) });
    const runner = new SyncRunner({ ...runnerInit(), config: { SYNC_BATCH_SIZE: 10, SYNC_MAX_PARALLEL: 1 } });
    demo.simulator.latencyMs = 100;
    try {
      const first = await runner.runMapping(company, "CUSTOMER", { budget: AbortSignal.timeout(150) });
      expect(first.stoppedEarly).toBe(true);
      expect(first.logs.find((log) => log.direction === "toCrm")!.inserted).toBeLessThan(30);
      expect(first.logs[0]!.message).toBe("The run stopped at its time budget; the next run continues where it stopped.");
    } finally {
      demo.simulator.latencyMs = 0;
    }
    await runner.runMapping(company, "CUSTOMER");
    expect(accountsNamed(company)).toHaveLength(30);
  });

  it("a run cancelled midway stops its Dataverse requests with the reason, and the next run finishes without duplicates", async () => {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(40, company) });
    const stop = new AbortController();
    // The host shuts down while the run writes its second wave (its first bulk write is in flight).
    const { couplings: real } = runnerInit();
    const couplings = Object.create(real) as CouplingRepository;
    // Final couplings (not pending ones) are what a wave saves once its Dataverse write is done.
    let finalSaves = 0;
    let finalSavesAfterStop = 0;
    couplings.save = async (company, mapping, list) => {
      const final = list.some((coupling) => !coupling.pending);
      if (final && stop.signal.aborted) finalSavesAfterStop++;
      await real.save(company, mapping, list);
      if (final && ++finalSaves === 1) stop.abort(new Error("The host is shutting down."));
    };
    const runner = new SyncRunner({ ...runnerInit(), couplings, config: { SYNC_BATCH_SIZE: 10, SYNC_MAX_PARALLEL: 1 } });
    demo.simulator.latencyMs = 200;
    try {
      await expect(runner.runMapping(company, "CUSTOMER", { signal: stop.signal })).rejects.toThrow("The host is shutting down.");
      const afterStop = demo.simulator.stats.requests;
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(demo.simulator.stats.requests, "no request after the cancellation").toBe(afterStop);
      expect(finalSavesAfterStop, "the waves in flight were abandoned at their Dataverse write, not finished").toBe(0);
      expect(accountsNamed(company).length).toBeLessThan(40);
    } finally {
      demo.simulator.latencyMs = 0;
    }
    await new SyncRunner(runnerInit()).runMapping(company, "CUSTOMER");
    expect(accountsNamed(company)).toHaveLength(40);
    expect(new Set(accountsNamed(company).map((row) => row.name)).size).toBe(40);
  });

  it("the host shutting down stops a running job without counting a failed attempt; the next run finishes it", async () => {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(40, company) });
    const services = demo.app.services;
    const shutdown = new AbortController();
    const runner = new SyncRunner({ ...runnerInit(), config: { SYNC_BATCH_SIZE: 10, SYNC_MAX_PARALLEL: 1 } });
    const worker = new JobRunner({
      sync: services.sync,
      setups: services.setups,
      runner,
      queue: services.queue,
      config: services.config,
      shutdown: shutdown.signal,
    });
    demo.simulator.latencyMs = 150;
    try {
      const running = worker.runJob(company, "CUSTOMER", undefined, true);
      setTimeout(() => shutdown.abort(new Error("The Functions host is shutting down.")), 300);
      await running;
    } finally {
      demo.simulator.latencyMs = 0;
    }
    const job = (await services.sync.job(company, "CUSTOMER"))!.value;
    expect(job).toMatchObject({ status: "Ready", attempts: 0, lastError: jobMessages.shutDown });
    expect(accountsNamed(company).length).toBeLessThan(40);
    await new SyncRunner(runnerInit()).runMapping(company, "CUSTOMER");
    expect(accountsNamed(company)).toHaveLength(40);
  });

  it("logs one structured line per run, with counts, duration and Dataverse requests, for Application Insights", async () => {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(3, company) });
    const lines: string[] = [];
    const runner = new SyncRunner({ ...runnerInit(), log: (line) => lines.push(line) });
    await runner.runMapping(company, "CUSTOMER");
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith("sync-run {")).toBe(true);
    const record = JSON.parse(lines[0]!.slice("sync-run ".length));
    expect(record).toMatchObject({
      event: "sync-run",
      company,
      mapping: "CUSTOMER",
      full: false,
      stoppedEarly: false,
      throttled: 0,
      counts: { toCrm: { inserted: 3, failed: 0 }, fromCrm: { failed: 0 } },
    });
    expect(record.dataverseRequests).toBeGreaterThan(0);
    expect(record.durationMs).toBeGreaterThanOrEqual(0);
    expect(lines[0]).not.toMatch(/password|secret/i);
  });

  it("two overlapping runs of one entry: one processes, the other yields", async () => {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(2, company) });
    const outcomes = await Promise.all([demo.app.services.jobs.runJob(company, "CUSTOMER"), demo.app.services.jobs.runJob(company, "CUSTOMER")]);
    expect(outcomes.sort()).toEqual(["processed", "yielded"]);
    expect(accountsNamed(company)).toHaveLength(2);
  });

  it("a 503 in the middle of the batches is retried and the counts are right", async () => {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(40, company) });
    const runner = new SyncRunner({ ...runnerInit(), config: { SYNC_BATCH_SIZE: 10, SYNC_MAX_PARALLEL: 2 } });
    demo.simulator.addFault({ path: /UpsertMultiple$/, status: 503, times: 1 });
    const result = await runner.runMapping(company, "CUSTOMER");
    expect(result.logs.find((log) => log.direction === "toCrm")).toMatchObject({ inserted: 40, failed: 0 });
    expect(accountsNamed(company)).toHaveLength(40);
  });

  it("a job that keeps failing goes to Error after its maximum attempts, with the reason", async () => {
    const company = await enabledCompanyWithDefaultSync();
    const { sync, jobs } = demo.app.services;
    const stored = (await sync.job(company, "CUSTOMER"))!;
    await sync.saveJob({ ...stored.value, maxAttempts: 2 }, stored.etag);
    demo.simulator.addFault({ path: /^accounts/, method: "GET", status: 500, times: 2, message: "Generic SQL error." });
    expect(await jobs.runJob(company, "CUSTOMER")).toBe("processed");
    expect((await sync.job(company, "CUSTOMER"))!.value).toMatchObject({
      status: "Ready",
      attempts: 1,
      lastError: expect.stringContaining("Generic SQL error."),
    });
    expect(await jobs.runJob(company, "CUSTOMER", undefined, true)).toBe("processed");
    expect((await sync.job(company, "CUSTOMER"))!.value).toMatchObject({
      status: "Error",
      attempts: 2,
      lastError: expect.stringMatching(/^Failed 2 times; the last time: .*Generic SQL error\./),
    });
  });

  it("throttling beyond the client's bound reschedules without counting an attempt", async () => {
    const company = await enabledCompanyWithDefaultSync();
    const { sync, jobs } = demo.app.services;
    demo.simulator.addFault({ path: /^accounts/, method: "GET", status: 429, times: 1, retryAfterSeconds: 600 });
    expect(await jobs.runJob(company, "CUSTOMER")).toBe("processed");
    const job = (await sync.job(company, "CUSTOMER"))!.value;
    expect(job).toMatchObject({ status: "Ready", attempts: 0 });
    expect(Date.parse(job.nextRunAt!) - Date.parse(job.lastRunAt!)).toBe(600_000);
    demo.simulator.clearFaults();
  });
});

describe("conflicts and couplings", () => {
  async function synced(count: number) {
    const company = await enabledCompanyWithDefaultSync();
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(count, company) });
    await demo.app.services.runner.runMapping(company, "CUSTOMER");
    return company;
  }

  it("a conflict on the same field fails the record with BC's message, changes neither side and is listed", async () => {
    const company = await synced(1);
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: [{ id: `${company}0001`, name: "ERP edit", city: "Oslo" }] });
    const account = accountsNamed(company)[0]!;
    demo.simulator.store.update("accounts", String(account.accountid), { name: "CRM edit" }, janeId);
    const result = await demo.app.services.runner.runMapping(company, "CUSTOMER");
    const toCrm = result.logs.find((log) => log.direction === "toCrm")!;
    expect(toCrm).toMatchObject({ failed: 1, modified: 0 });
    const { errors } = await demo.app.services.syncLog.errors(company, toCrm.id);
    expect(errors).toEqual([{ sourceId: `${company}0001`, destinationId: account.accountid, reason: syncMessages.conflict("accounts", "customers") }]);
    expect((await demo.app.services.erpRecordStore.get(company, "customers", `${company}0001`))?.fields.name).toBe("ERP edit");
    expect(demo.simulator.store.get("accounts", String(account.accountid))?.name).toBe("CRM edit");
    const conflicts = (await demo.app.call("GET", `/api/companies/${company}/sync/conflicts`)).json.value;
    expect(conflicts).toEqual([
      expect.objectContaining({
        mapping: "CUSTOMER",
        erpId: `${company}0001`,
        conflicts: [{ erpField: "name", crmColumn: "name", erpValue: "ERP edit", crmValue: "CRM edit", syncedValue: `${company} customer 1` }],
      }),
    ]);
  });

  it("fails a record coupled to a CRM row that was deleted", async () => {
    const company = await synced(2);
    const [gone] = accountsNamed(company);
    demo.simulator.store.delete("accounts", String(gone!.accountid));
    await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(2, company, { city: "Bergen" }) });
    const result = await demo.app.services.runner.runMapping(company, "CUSTOMER");
    const fromCrm = result.logs.find((log) => log.direction === "fromCrm")!;
    const toCrm = result.logs.find((log) => log.direction === "toCrm")!;
    expect(toCrm.modified + fromCrm.modified).toBe(1);
    expect(toCrm.failed + fromCrm.failed).toBe(1);
    const errors = [
      ...(await demo.app.services.syncLog.errors(company, toCrm.id)).errors,
      ...(await demo.app.services.syncLog.errors(company, fromCrm.id)).errors,
    ];
    expect(errors.map((error) => error.reason)).toEqual([syncMessages.coupledToDeletedCrm("accounts")]);
  });

  it("removes the coupling when the ERP record is deleted (the CRM row stays) when the mapping says so", async () => {
    const company = await synced(1);
    const patched = await demo.app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, {
      body: { deletionConflictResolution: "removeCoupling" },
    });
    expect(patched.status).toBe(200);
    expect((await demo.app.call("DELETE", `/api/companies/${company}/erp/customers/${company}0001`)).status).toBe(204);
    const result = await demo.app.services.runner.runMapping(company, "CUSTOMER");
    expect(result.logs.find((log) => log.direction === "toCrm")).toMatchObject({ deleted: 1 });
    expect((await demo.app.services.couplings.load(company, "CUSTOMER")).filter((coupling) => coupling.erpId.startsWith(company))).toEqual([]);
    expect(accountsNamed(company)).toHaveLength(1);
  });

  it("runs a full synchronization in dependency order, coupling CRM users to salespeople", async () => {
    const company = await enabledCompanyWithDefaultSync();
    const response = await demo.app.call("POST", `/api/companies/${company}/sync/full`);
    expect(response.status).toBe(202);
    await demo.app.host.processQueues();
    const log = (await demo.app.call("GET", `/api/companies/${company}/sync/log?runId=${response.json.runId}&top=50`)).json.value;
    expect(log.find((entry: { mapping: string }) => entry.mapping === "SALESPEOPLE")).toMatchObject({ direction: "fromCrm", inserted: expect.any(Number) });
    const salespeople = await demo.app.call("GET", `/api/companies/${company}/erp/salespeople?top=50`);
    expect(salespeople.json.value.map((person: { name: string }) => person.name)).toContain("Jane Seller");
    const jobs = (await demo.app.call("GET", `/api/companies/${company}/sync/jobs`)).json;
    expect(jobs.activeScheduledSyncJobs.text).toBe("11 of 12");
  });
});

describe("ERP records API", () => {
  it("refuses bad records with their index and stores nothing from that request", async () => {
    const company = await setUpDemoCompany(demo);
    const response = await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, {
      body: [
        { id: "C1", name: "Fine" },
        { id: "C2", name: "" },
        { id: "C3", name: "x", email: "not-mail", colour: "red" },
        { id: "C1", name: "Again" },
      ],
    });
    expect(response.status).toBe(400);
    expect(response.json.errors).toHaveLength(4);
    expect(response.json.errors).toEqual(
      expect.arrayContaining([
        { path: "[1].name", message: "is required" },
        { path: "[2].colour", message: "is not a known field" },
        { path: "[2].email", message: "must be an email address" },
        { path: "[3].id", message: "repeats the id of record [0]" },
      ]),
    );
    expect((await demo.app.call("GET", `/api/companies/${company}/erp/customers`)).json.value).toEqual([]);
    expect((await demo.app.call("PUT", `/api/companies/${company}/erp/planets`, { body: [] })).status).toBe(404);
    expect((await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: customers(1001, "X") })).status).toBe(400);
  });

  it("refuses a record too large for one table property (a sales order of 100 long lines) with 400, and keeps large orders it can store", async () => {
    const company = await setUpDemoCompany(demo);
    // Every field within its own limit, the whole order past what one table property holds.
    const line = (index: number, description: string) => ({
      lineNo: index + 1,
      type: "Resource",
      no: `R${String(index).padStart(19, "0")}`,
      description,
      quantity: 1234567.123456789,
      unitPrice: 922337203685477,
      lineDiscountPercent: 12.345678901234567,
      lineDiscountAmount: 922337203685477,
      unitOfMeasure: "HOURSHOURS",
    });
    const order = (lines: number, description: string) => ({
      id: `SO-${lines}`,
      customerNo: "10000",
      orderDate: "2026-11-26",
      lines: Array.from({ length: lines }, (_, index) => line(index, description)),
    });
    const tooLarge = await demo.app.call("PUT", `/api/companies/${company}/erp/salesOrders`, { body: [order(100, "é".repeat(100))] });
    expect(tooLarge.status).toBe(400);
    expect(tooLarge.json.errors[0]).toMatchObject({ path: "[0]" });
    expect(tooLarge.json.errors[0].message).toMatch(/is too large to store: \d+ characters as JSON, at most 30000/);
    // Orders of 60 long lines are within the limit and are stored.
    const large = Array.from({ length: 50 }, (_, index) => ({ ...order(60, "d".repeat(100)), id: `SO-L${index}` }));
    expect((await demo.app.call("PUT", `/api/companies/${company}/erp/salesOrders`, { body: large })).status).toBe(200);
    expect((await demo.app.call("GET", `/api/companies/${company}/erp/salesOrders?top=100`)).json.value).toHaveLength(50);
  });

  it("reads changes since a time in pages with a continuation token", async () => {
    const company = await setUpDemoCompany(demo);
    const first = await demo.app.call("PUT", `/api/companies/${company}/erp/items`, {
      body: [
        { id: "I1", description: "Bolt" },
        { id: "I2", description: "Nut" },
      ],
    });
    const since = first.json.records[1].modifiedAt;
    await demo.app.call("PUT", `/api/companies/${company}/erp/items`, {
      body: [
        { id: "I3", description: "Washer" },
        { id: "I4", description: "Screw" },
        { id: "I5", description: "Pin" },
      ],
    });
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await demo.app.call(
        "GET",
        `/api/companies/${company}/erp/items?modifiedSince=${encodeURIComponent(since)}&top=2${token ? `&continuationToken=${encodeURIComponent(token)}` : ""}`,
      );
      expect(page.json.value.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.value.map((item: { id: string }) => item.id));
      token = page.json.continuationToken;
      pages++;
    } while (token && pages < 10);
    expect(seen.sort()).toEqual(["I3", "I4", "I5"]);
    expect(pages).toBeGreaterThanOrEqual(2);
  });
});

function runnerInit() {
  const services = demo.app.services;
  return {
    sync: services.sync,
    couplings: services.couplings,
    erpRecords: services.erpRecordStore,
    logs: services.syncLog,
    issues: services.syncIssues,
    connector: services.connector,
    setups: services.setups,
    config: services.config,
  };
}
