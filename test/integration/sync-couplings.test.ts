import { randomUUID } from "node:crypto";
import { TableClient } from "@azure/data-tables";
import { describe, expect, it } from "vitest";
import { CouplingRepository } from "../../src/lib/storage/coupling-repository";
import { rowOf } from "../../src/lib/storage/coupling-rows";
import { TableStorage } from "../../src/lib/storage/table-storage";
import { type SentAction, requestCounter } from "../support/request-counter";
import { JobRunner } from "../../src/lib/sync/job-runner";
import { useSyncHarness } from "../support/sync-harness";

// Coupled records as BC's admins manage them: couple by hand, uncouple, synchronize now, list and page.
const harness = useSyncHarness();
const { admin, jane, enabledCompany, put, erp, run, couplingOf, crmRow } = harness;
const janeId = "a1b2c3d4-0006-4000-8000-000000000006";
const call = (method: string, path: string, body?: unknown) => harness.demo.app.call(method, path, body === undefined ? {} : { body });

describe("couplings API", () => {
  it("couples an ERP salesperson to its CRM user by hand, and refuses a second coupling of either side", async () => {
    const company = await enabledCompany();
    await put(company, "salespeople", [
      { id: "JS", name: "J. S." },
      { id: "XX", name: "Someone" },
    ]);
    const coupled = await call("PUT", `/api/companies/${company}/sync/couplings/SALESPEOPLE/JS`, { crmId: janeId });
    expect(coupled.status).toBe(200);
    expect(coupled.json).toMatchObject({ mapping: "SALESPEOPLE", erpId: "JS", crmId: janeId, status: "coupled" });
    await call("POST", `/api/companies/${company}/sync/couplings/SALESPEOPLE/JS/synchronize`, {});
    expect(await erp(company, "salespeople", "JS")).toMatchObject({ name: "Jane Seller", email: "jane@demo.example" });
    expect((await call("PUT", `/api/companies/${company}/sync/couplings/SALESPEOPLE/XX`, { crmId: janeId })).status).toBe(409);
    expect((await call("PUT", `/api/companies/${company}/sync/couplings/SALESPEOPLE/JS`, { crmId: "a1b2c3d4-0002-4000-8000-000000000002" })).status).toBe(409);
    expect((await call("PUT", `/api/companies/${company}/sync/couplings/SALESPEOPLE/XX`, { crmId: randomUUID() })).status).toBe(404);
    expect((await call("PUT", `/api/companies/${company}/sync/couplings/SALESPEOPLE/NOPE`, { crmId: janeId })).status).toBe(404);
    const bad = await call("PUT", `/api/companies/${company}/sync/couplings/SALESPEOPLE/XX`, { crmId: "jane" });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toBe("crmId");
  });

  it("uncouples a record whose CRM row was deleted and couples it again to a new row, synchronized from the ERP", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} Kept`, city: "Oslo" }]);
    await run(company, "CUSTOMER");
    const gone = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    await admin("DELETE", `accounts(${gone})`);
    expect((await call("DELETE", `/api/companies/${company}/sync/couplings/CUSTOMER/C1`)).status).toBe(204);
    expect(await couplingOf(company, "CUSTOMER", "C1")).toBeUndefined();
    const fresh = await admin("POST", "accounts", { body: { name: "Placeholder", customertypecode: 3 }, headers: { prefer: "return=representation" } });
    expect((await call("PUT", `/api/companies/${company}/sync/couplings/CUSTOMER/C1`, { crmId: fresh.json.accountid })).status).toBe(200);
    const synchronized = await call("POST", `/api/companies/${company}/sync/couplings/CUSTOMER/C1/synchronize`, { direction: "toCrm" });
    expect(synchronized.status).toBe(200);
    expect(crmRow("accounts", fresh.json.accountid)).toMatchObject({ name: `${company} Kept`, address1_city: "Oslo" });
    expect((await call("DELETE", `/api/companies/${company}/sync/couplings/CUSTOMER/C1`)).status).toBe(204);
    expect((await call("DELETE", `/api/companies/${company}/sync/couplings/CUSTOMER/C1`)).status).toBe(404);
  });

  it("lists couplings with their state, filtered and paged", async () => {
    const company = await enabledCompany();
    await put(
      company,
      "customers",
      [1, 2, 3].map((index) => ({ id: `C${index}`, name: `${company} ${index}` })),
    );
    await run(company, "CUSTOMER");
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await call(
        "GET",
        `/api/companies/${company}/sync/couplings?mapping=CUSTOMER&status=coupled&top=2${token ? `&continuationToken=${token}` : ""}`,
      );
      expect(page.status).toBe(200);
      expect(page.json.value.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.value.filter((coupling: { erpId: string }) => /^C\d$/.test(coupling.erpId)).map((coupling: { erpId: string }) => coupling.erpId));
      token = page.json.continuationToken;
    } while (token);
    expect(seen).toEqual(["C1", "C2", "C3"]);
    const one = await call("GET", `/api/companies/${company}/sync/couplings?erpId=C2`);
    expect(one.json.value).toEqual([
      expect.objectContaining({ mapping: "CUSTOMER", erpId: "C2", status: "coupled", lastSynchronized: expect.objectContaining({ name: `${company} 2` }) }),
    ]);
    expect((await call("GET", `/api/companies/${company}/sync/couplings?status=lost`)).status).toBe(400);
    expect((await call("GET", `/api/companies/${company}/sync/couplings?continuationToken=garbage`)).status).toBe(400);
  });
});

describe("the job log", () => {
  it("pages back with a continuation token and filters by mapping, direction, time and failed only", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} 1` }]);
    for (let round = 0; round < 3; round++) await run(company, "CUSTOMER");
    const log = (query: string) => call("GET", `/api/companies/${company}/sync/log?${query}`);
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await log(`mapping=CUSTOMER&top=2${token ? `&continuationToken=${encodeURIComponent(token)}` : ""}`);
      expect(page.status).toBe(200);
      expect(page.json.value.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.value.map((entry: { id: string }) => entry.id));
      token = page.json.continuationToken;
    } while (token);
    expect(seen).toHaveLength(6); // three runs, two directions
    expect([...seen].sort()).toEqual(seen); // newest first
    const toCrm = await log("mapping=CUSTOMER&direction=toCrm&top=50");
    expect(toCrm.json.value.every((entry: { direction: string }) => entry.direction === "toCrm")).toBe(true);
    expect((await log("mapping=CUSTOMER&failedOnly=true")).json.value).toEqual([]);
    expect((await log(`mapping=CUSTOMER&from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).json.value).toEqual([]);
    const forged = Buffer.from(JSON.stringify({ nextPartitionKey: "x", nextRowKey: 5 })).toString("base64");
    for (const bad of [
      "direction=sideways",
      "from=yesterday",
      "failedOnly=maybe",
      "continuationToken=garbage",
      "top=0",
      `continuationToken=${encodeURIComponent(forged)}`,
    ])
      expect((await log(bad)).status, bad).toBe(400);
    expect((await call("GET", `/api/companies/${company}/sync/log/nope/errors`)).status).toBe(404);
    expect((await call("GET", `/api/companies/no-such-company/sync/log`)).status).toBe(404);
  });
});

describe("from a log row to its records", () => {
  it("pages a run's error rows and lists the records it left deferred, by run", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} Blocked`, blocked: "All" }]);
    await put(
      company,
      "contacts",
      [1, 2, 3].map((index) => ({ id: `P${index}`, firstName: `Pat ${index}`, surname: company, companyNo: "C1" })),
    );
    const result = await run(company, "CONTACT");
    const [row] = (await call("GET", `/api/companies/${company}/sync/log?mapping=CONTACT&runId=${result.runId}&direction=toCrm`)).json.value;
    expect(row).toMatchObject({ failed: 3, links: { errors: expect.stringContaining(row.id), issues: expect.stringContaining(result.runId) } });

    const reasons: string[] = [];
    let next: string | undefined = `${row.links.errors}?top=2`;
    while (next) {
      const page = await call("GET", next);
      expect(page.status).toBe(200);
      expect(page.json.value.length).toBeLessThanOrEqual(2);
      reasons.push(...page.json.value.map((error: { sourceId: string }) => error.sourceId));
      next = page.json.continuationToken ? `${row.links.errors}?top=2&continuationToken=${encodeURIComponent(page.json.continuationToken)}` : undefined;
    }
    expect(reasons.sort()).toEqual(["P1", "P2", "P3"]);
    expect((await call("GET", `${row.links.errors}?top=0`)).status).toBe(400);

    const issues = await call("GET", `${row.links.issues}&top=2`);
    expect(issues.json.value).toHaveLength(2);
    expect(issues.json.value[0]).toMatchObject({ kind: "deferred", runId: result.runId, mapping: "CONTACT" });
    const rest = await call("GET", `${row.links.issues}&top=2&continuationToken=${issues.json.continuationToken}`);
    expect([...issues.json.value, ...rest.json.value].map((issue: { erpId: string }) => issue.erpId).sort()).toEqual(["P1", "P2", "P3"]);
    expect(rest.json.continuationToken).toBeUndefined();
    expect((await call("GET", `/api/companies/${company}/sync/issues?kind=deferred&runId=another-run`)).json.value).toEqual([]);
    expect((await call("GET", `/api/companies/${company}/sync/issues?kind=lost`)).status).toBe(400);
    expect((await call("GET", `/api/companies/${company}/sync/conflicts?kind=skipped`)).status).toBe(400);
  });
});

describe("job entries you can change", () => {
  it("changes minutes between runs, maximum attempts and the earliest start, validated", async () => {
    const company = await enabledCompany();
    const later = new Date(Date.now() + 3600_000).toISOString();
    const changed = await call("PATCH", `/api/companies/${company}/sync/jobs/CUSTOMER`, { minutesBetweenRuns: 15, maxAttempts: 3, earliestStartAt: later });
    expect(changed.status).toBe(200);
    expect(changed.json).toMatchObject({ id: "CUSTOMER", minutesBetweenRuns: 15, maxAttempts: 3, nextRunAt: later, status: "Ready" });
    // Not due before its earliest start: the timer passes it by.
    expect(await harness.demo.app.services.sync.dueJobs("CUSTOMER", new Date().toISOString())).not.toContain(company);
    for (const body of [{ minutesBetweenRuns: 0 }, { maxAttempts: "many" }, { earliestStartAt: "tomorrow" }, {}, { colour: "red" }]) {
      const refused = await call("PATCH", `/api/companies/${company}/sync/jobs/CUSTOMER`, body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.json.errors[0].path).not.toBe("");
    }
    expect((await call("PATCH", `/api/companies/${company}/sync/jobs/NOPE`, { maxAttempts: 2 })).status).toBe(404);
  });
});

describe("job entries at run time", () => {
  it("sleeps after the inactivity timeout of idle runs, and an ERP change wakes it", async () => {
    const company = await enabledCompany();
    const services = harness.demo.app.services;
    let now = Date.now();
    const worker = new JobRunner({
      sync: services.sync,
      setups: services.setups,
      runner: services.runner,
      queue: services.queue,
      config: services.config,
      clock: () => new Date(now),
    });
    const job = async () => (await call("GET", `/api/companies/${company}/sync/jobs`)).json.value.find((entry: { id: string }) => entry.id === "CURRENCY");
    expect(await job()).toMatchObject({ inactivityTimeoutMinutes: 0 });
    expect((await call("PATCH", `/api/companies/${company}/sync/jobs/CURRENCY`, { inactivityTimeoutMinutes: 60 })).json).toMatchObject({
      inactivityTimeoutMinutes: 60,
    });
    expect((await call("PATCH", `/api/companies/${company}/sync/jobs/CURRENCY`, { inactivityTimeoutMinutes: -1 })).status).toBe(400);

    await put(company, "currencies", [{ id: "EUR", description: "Euro", symbol: "€", exchangeRate: 1 }]);
    await worker.runJob(company, "CURRENCY", undefined, true); // synchronizes the currency: active
    expect(await job()).not.toHaveProperty("idleSince");
    await worker.runJob(company, "CURRENCY", undefined, true); // nothing to do: idle from now
    expect(await job()).toMatchObject({ idleSince: new Date(now).toISOString() });
    expect(await job()).not.toHaveProperty("sleeping");
    now += 61 * 60_000;
    await worker.runJob(company, "CURRENCY", undefined, true); // idle for over an hour: asleep for an hour
    const asleep = await job();
    expect(asleep).toMatchObject({ sleeping: true, status: "Ready", nextRunAt: new Date(now + 60 * 60_000).toISOString() });

    await put(company, "currencies", [{ id: "NOK", description: "Krone", symbol: "kr", exchangeRate: 0.09 }]);
    const awake = await job();
    expect(awake).not.toHaveProperty("sleeping");
    expect(Date.parse(awake.nextRunAt)).toBeLessThanOrEqual(Date.now());
  });

  it("shows a running job's phase and records done, and drops them when the run ends", async () => {
    const company = await enabledCompany();
    const services = harness.demo.app.services;
    await put(
      company,
      "customers",
      Array.from({ length: 250 }, (_, index) => ({ id: `P${index}`, name: `${company} ${index}` })),
    );
    // The real run reports its phases and its records, in order.
    const seen: { phase: string; recordsDone: number; recordsTotal?: number }[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const observed = {
      runMapping: async (...[runCompany, name, options]: Parameters<typeof services.runner.runMapping>) =>
        services.runner.runMapping(runCompany, name, {
          ...options,
          onProgress: async (progress) => {
            seen.push(progress);
            await options?.onProgress?.(progress);
            if (progress.phase === "synchronizing" && progress.recordsDone > 0) await gate;
          },
        }),
    } as typeof services.runner;
    const worker = new JobRunner({ sync: services.sync, setups: services.setups, runner: observed, queue: services.queue, config: services.config });
    const running = worker.runJob(company, "CUSTOMER", "progress-run", true);
    let shown: { status: string; progress?: { phase: string; recordsDone: number; recordsTotal: number; runId: string } } | undefined;
    for (let wait = 0; wait < 200 && !shown?.progress?.recordsDone; wait++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      shown = (await call("GET", `/api/companies/${company}/sync/jobs`)).json.value.find((entry: { id: string }) => entry.id === "CUSTOMER");
    }
    expect(shown).toMatchObject({ status: "In Process", progress: { runId: "progress-run", phase: "synchronizing" } });
    expect(shown!.progress!.recordsDone).toBeGreaterThan(0);
    expect(shown!.progress!.recordsTotal).toBeGreaterThanOrEqual(250);
    release();
    await running;
    expect(seen[0]).toMatchObject({ phase: "reading changes", recordsDone: 0 });
    expect(seen.at(-1)).toMatchObject({ phase: "writing the log" });
    const done = seen.filter((progress) => progress.phase === "synchronizing").map((progress) => progress.recordsDone);
    expect([...done].sort((a, b) => a - b)).toEqual(done);
    const after = (await call("GET", `/api/companies/${company}/sync/jobs`)).json.value.find((entry: { id: string }) => entry.id === "CUSTOMER");
    expect(after.status).toBe("Ready");
    expect(after).not.toHaveProperty("progress");
  });
});

describe("match-based coupling", () => {
  it("couples by equal values, reports ambiguous ones, and creates the rest when asked", async () => {
    const company = await enabledCompany();
    const tag = company.slice(-8);
    for (const name of [`Match Me ${tag}`, `Two Same ${tag}`, `two same ${tag} `]) {
      expect((await jane("POST", "accounts", { body: { name, customertypecode: 3 } })).status).toBe(204);
    }
    await put(company, "customers", [
      { id: "C1", name: `match me ${tag}` },
      { id: "C2", name: `Two Same ${tag}` },
      { id: "C3", name: `Nobody ${tag}` },
    ]);
    const matched = await call("POST", `/api/companies/${company}/sync/mappings/CUSTOMER/match`, { fields: ["name"], createIfNoMatch: true });
    expect(matched.status).toBe(200);
    expect(matched.json).toEqual({ coupled: 1, created: 1, ambiguous: ["C2"], unmatched: [] });
    const c1 = (await couplingOf(company, "CUSTOMER", "C1"))!;
    expect(crmRow("accounts", c1.crmId)!.name).toBe(`Match Me ${tag}`);
    expect(crmRow("accounts", (await couplingOf(company, "CUSTOMER", "C3"))!.crmId)!.name).toBe(`Nobody ${tag}`);
    expect(await couplingOf(company, "CUSTOMER", "C2")).toBeUndefined();
    const bad = await call("POST", `/api/companies/${company}/sync/mappings/CUSTOMER/match`, { fields: ["colour"] });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toBe("fields[0]");
  });
});

describe("CRM ids chosen before a wave's creates (the wave's manifest)", () => {
  const repository = () => new CouplingRepository(harness.demo.app.services.tables);
  const pendingOf = async (company: string) => (await repository().load(company, "CUSTOMER")).filter((coupling) => coupling.pending);

  it("read as pending couplings until the wave settles, and a coupling written later wins", async () => {
    const company = await enabledCompany();
    const couplings = repository();
    await couplings.save(company, "CUSTOMER", [{ erpId: "OLD", crmId: "11111111-0000-4000-8000-000000000001", pending: false }]);
    const ids = Array.from({ length: 7000 }, (_, index) => ({ erpId: `C${index}`, crmId: randomUUID() }));
    const manifest = await couplings.savePending(company, "CUSTOMER", [...ids, { erpId: "OLD", crmId: "22222222-0000-4000-8000-000000000002" }]);
    expect(manifest.rowKeys, "7,001 entries take two rows").toHaveLength(2);
    const read = await couplings.load(company, "CUSTOMER");
    expect(read.filter((coupling) => coupling.pending)).toHaveLength(7001);
    expect(read.find((coupling) => coupling.erpId === "OLD")?.crmId, "the manifest is newer than OLD's coupling").toBe("22222222-0000-4000-8000-000000000002");
    await couplings.save(company, "CUSTOMER", [{ erpId: "C1", crmId: ids[1]!.crmId, pending: false }]);
    await couplings.save(company, "CUSTOMER", [{ erpId: "C2", crmId: "33333333-0000-4000-8000-000000000003", pending: false }]);
    const after = new Map((await couplings.load(company, "CUSTOMER")).map((coupling) => [coupling.erpId, coupling]));
    expect(after.get("C1")).toMatchObject({ crmId: ids[1]!.crmId, pending: false });
    expect(after.get("C2"), "coupled by hand after the manifest").toMatchObject({ crmId: "33333333-0000-4000-8000-000000000003", pending: false });
    // The wave is done: what got no coupling stays pending (its row may exist), the rest of the manifest goes.
    await couplings.settlePending(company, "CUSTOMER", manifest, [ids[3]!]);
    expect((await pendingOf(company)).map((coupling) => coupling.erpId)).toEqual(["C3"]);
  });

  it("a manifest a crashed run left becomes pending couplings once, even with two workers recovering it at once", async () => {
    const company = await enabledCompany();
    await repository().savePending(company, "CUSTOMER", [
      { erpId: "A", crmId: randomUUID() },
      { erpId: "B", crmId: randomUUID() },
    ]);
    await Promise.all([repository().recoverPending(company, "CUSTOMER"), repository().recoverPending(company, "CUSTOMER")]);
    expect((await pendingOf(company)).map((coupling) => coupling.erpId).sort()).toEqual(["A", "B"]);
    // Uncoupling by hand is not undone by the manifest: it was settled first.
    await repository().remove(company, "CUSTOMER", ["A"]);
    expect((await pendingOf(company)).map((coupling) => coupling.erpId)).toEqual(["B"]);
  });

  it("uncoupling another record while a wave's creates are in flight leaves that wave's manifest alone", async () => {
    const company = await enabledCompany();
    const couplings = repository();
    await couplings.save(company, "CUSTOMER", [{ erpId: "GONE", crmId: randomUUID(), pending: false }]);
    const x = { erpId: "X", crmId: randomUUID() };
    const manifest = await couplings.savePending(company, "CUSTOMER", [x]);
    await couplings.remove(company, "CUSTOMER", ["GONE"]);
    const rows = TableClient.fromConnectionString(process.env.AzureWebJobsStorage!, "couplings", { allowInsecureConnection: true });
    const stored: string[] = [];
    const filter = `PartitionKey ge '${company}~CUSTOMER~' and PartitionKey lt '${company}~CUSTOMER~~'`;
    for await (const row of rows.listEntities({ queryOptions: { filter } })) stored.push(String(row.rowKey));
    expect(stored, "no pending row was written over the wave's record (its final coupling may be on its way)").toEqual([]);
    expect((await pendingOf(company)).map((coupling) => coupling.erpId)).toEqual(["X"]);
    await couplings.save(company, "CUSTOMER", [{ ...x, pending: false, synced: { name: "X" } }]);
    await couplings.settlePending(company, "CUSTOMER", manifest, []);
    expect((await couplings.load(company, "CUSTOMER")).find((coupling) => coupling.erpId === "X")).toMatchObject({ pending: false, synced: { name: "X" } });
  });

  it("recovering a manifest keeps a coupling written after it", async () => {
    const company = await enabledCompany();
    const couplings = repository();
    await couplings.savePending(company, "CUSTOMER", [{ erpId: "Y", crmId: randomUUID() }]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const byHand = "44444444-0000-4000-8000-000000000004";
    await couplings.save(company, "CUSTOMER", [{ erpId: "Y", crmId: byHand, pending: false, synced: { name: "Y" } }]);
    await couplings.recoverPending(company, "CUSTOMER");
    expect((await couplings.load(company, "CUSTOMER")).find((coupling) => coupling.erpId === "Y")).toMatchObject({ crmId: byHand, pending: false });
  });

  it("uncoupling a record is not undone by a manifest left behind", async () => {
    const company = await enabledCompany();
    await repository().savePending(company, "CUSTOMER", [{ erpId: "A", crmId: randomUUID() }]);
    await repository().remove(company, "CUSTOMER", ["A"]);
    expect(await pendingOf(company)).toEqual([]);
  });
});

describe("a run's coupling writes", () => {
  /** A repository whose transactions are recorded action by action. */
  const recorded = () => {
    const counter = requestCounter();
    const tables = new TableStorage(
      { connectionString: process.env.AzureWebJobsStorage! },
      { allowInsecureConnection: true, additionalPolicies: [counter.policy] },
    );
    return { couplings: new CouplingRepository(tables), counter };
  };
  /** How a coupling was sent, by ERP id (its row key), in the order sent: verb, If-Match and the status it got. */
  const sentFor = (transactions: SentAction[][], erpId: string) =>
    transactions
      .flat()
      .flatMap((action) =>
        action.table === "couplings" && action.rowKey === erpId
          ? [`${action.method}${action.ifMatch ? ` If-Match ${action.ifMatch}` : ""} ${action.status}`]
          : [],
      );

  it("create a coupling the run found none for and update one it read (one storage lookup each, not an upsert's two)", async () => {
    const company = await enabledCompany();
    const { couplings, counter } = recorded();
    await couplings.save(company, "CUSTOMER", [{ erpId: "READ", crmId: randomUUID(), pending: false }]);
    const read = (await couplings.load(company, "CUSTOMER")).find((coupling) => coupling.erpId === "READ")!;
    expect(rowOf(read)).toBe("present");
    expect(rowOf(undefined)).toBe("absent");
    expect(rowOf({ ...read }), "a copy is not known to have a row").toBeUndefined();
    counter.reset();
    const fresh = { erpId: "NEW", crmId: randomUUID(), pending: false, synced: { name: "New" } };
    const unknown = { erpId: "UNKNOWN", crmId: randomUUID(), pending: false };
    await couplings.save(company, "CUSTOMER", [{ ...read, synced: { name: "Read" } }, fresh, unknown], (coupling) =>
      coupling === fresh ? "absent" : coupling === unknown ? undefined : rowOf(read),
    );
    expect(sentFor(counter.transactions, "READ")).toEqual(["PUT If-Match * 204"]);
    expect(sentFor(counter.transactions, "NEW")).toEqual(["POST 204"]);
    expect(sentFor(counter.transactions, "UNKNOWN"), "not known: an upsert").toEqual(["PUT 204"]);
    const stored = new Map((await couplings.load(company, "CUSTOMER")).map((coupling) => [coupling.erpId, coupling]));
    expect(stored.get("READ")).toMatchObject({ synced: { name: "Read" } });
    expect(stored.get("NEW")).toMatchObject({ crmId: fresh.crmId, synced: { name: "New" } });
  });

  it("write over what an admin coupled or uncoupled since the run read the couplings, as upserts", async () => {
    const company = await enabledCompany();
    const { couplings, counter } = recorded();
    await couplings.save(company, "CUSTOMER", [{ erpId: "GONE", crmId: randomUUID(), pending: false }]);
    const read = (await couplings.load(company, "CUSTOMER")).find((coupling) => coupling.erpId === "GONE")!;
    // Meanwhile an admin uncouples GONE and couples BYHAND, which the run found uncoupled.
    await couplings.remove(company, "CUSTOMER", ["GONE"]);
    await couplings.save(company, "CUSTOMER", [{ erpId: "BYHAND", crmId: randomUUID(), pending: false }]);
    counter.reset();
    const run = { erpId: "BYHAND", crmId: randomUUID(), pending: false, synced: { name: "Run" } };
    await couplings.save(company, "CUSTOMER", [{ ...read, synced: { name: "Gone" } }, run], (coupling) => (coupling === run ? "absent" : "present"));
    const stored = new Map((await couplings.load(company, "CUSTOMER")).map((coupling) => [coupling.erpId, coupling]));
    expect(stored.get("GONE"), "the run's coupling is written again").toMatchObject({ crmId: read.crmId, synced: { name: "Gone" } });
    expect(stored.get("BYHAND"), "the run's coupling wins, as an upsert's would").toMatchObject({ crmId: run.crmId, synced: { name: "Run" } });
    expect(sentFor(counter.transactions, "GONE")).toEqual(["PUT If-Match * 404", "PUT 204"]);
    expect(sentFor(counter.transactions, "BYHAND")).toEqual(["POST 409", "PUT 204"]);
  });

  it("a run creates the couplings of new records and updates those of changed ones, with no transaction refused", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [
      { id: "K1", name: `${company} K1` },
      { id: "K2", name: `${company} K2` },
    ]);
    const storage = harness.demo.app.storage;
    storage.reset();
    await run(company, "CUSTOMER");
    expect(sentFor(storage.transactions, "K1")).toEqual(["POST 204"]);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await run(company, "CUSTOMER");
    await put(company, "customers", [
      { id: "K1", name: `${company} K1 renamed` },
      { id: "K3", name: `${company} K3` },
    ]);
    storage.reset();
    await run(company, "CUSTOMER");
    expect(sentFor(storage.transactions, "K1")).toEqual(["PUT If-Match * 204"]);
    expect(sentFor(storage.transactions, "K3")).toEqual(["POST 204"]);
    expect(sentFor(storage.transactions, "K2"), "unchanged: not written").toEqual([]);
    expect(
      storage.transactions.flat().filter((action) => action.status >= 400),
      "no transaction of the run was refused",
    ).toEqual([]);
  });
});
