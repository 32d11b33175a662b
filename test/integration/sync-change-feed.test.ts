// What a run reads: the ERP change rows, the lag lists, and nothing more when nothing changed.
import { TableClient } from "@azure/data-tables";
import { describe, expect, it } from "vitest";
import { CouplingRepository } from "../../src/lib/storage/coupling-repository";
import { ErpRecordRepository } from "../../src/lib/storage/erp-record-repository";
import { SyncRunner } from "../../src/lib/sync/sync-runner";
import { useSyncHarness } from "../support/sync-harness";

const harness = useSyncHarness();
const { enabledCompany, put, run, couplingOf, jane } = harness;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const customers = (company: string, count: number, suffix = "") =>
  Array.from({ length: count }, (_, index) => ({ id: `C${String(index).padStart(5, "0")}`, name: `${company} customer ${index}${suffix}` }));

/** The storage requests of one run of CUSTOMER, by table. */
async function storageOfRun(company: string) {
  const storage = harness.demo.app.storage;
  storage.reset();
  harness.demo.simulator.resetStats();
  await run(company, "CUSTOMER");
  const byTable = (table: string) => storage.to(table).length;
  return {
    total: storage.requests.length,
    couplings: byTable("couplings"),
    erpPointReads: storage.requests.filter((request) => request.method === "GET" && /erprecords\(PartitionKey=/.test(request.url)).length,
    dataverse: harness.demo.simulator.stats.requests,
  };
}

/** The rows of a record's partition in the ERP table: its record row and its change rows. */
async function changeRowsOf(company: string, id: string): Promise<string[]> {
  const table = TableClient.fromConnectionString(process.env.AzureWebJobsStorage!, "erprecords", { allowInsecureConnection: true });
  const keys: string[] = [];
  const filter = `PartitionKey ge '${company}~customers~' and PartitionKey lt '${company}~customers~~' and RowKey lt '%'`;
  for await (const row of table.listEntities({ queryOptions: { filter, select: ["RowKey"] } })) {
    if (String(row.rowKey).endsWith(`!${id}`)) keys.push(String(row.rowKey));
  }
  return keys;
}

/**
 * A runner writing `batch` records per wave, counting the ERP changes it has read when it first saves couplings;
 * `pageSize` is the feed's page per bucket, `onSave` runs before each coupling save (it may throw).
 */
function smallWaveRunner(batch: number, options: { pageSize?: number; onSave?: (saves: number, erpIds: string[]) => Promise<void> } = {}) {
  const s = harness.demo.app.services;
  const seen = { read: 0, readAtFirstSave: undefined as number | undefined, saves: 0 };
  const erpRecords = Object.create(s.erpRecordStore) as ErpRecordRepository;
  erpRecords.changes = async function* (company, table, since) {
    for await (const change of s.erpRecordStore.changes(company, table, since, options.pageSize)) {
      seen.read++;
      yield change;
    }
  };
  const real = new CouplingRepository(s.tables);
  const couplings = Object.create(real) as CouplingRepository;
  couplings.save = async (...args) => {
    seen.readAtFirstSave ??= seen.read;
    await options.onSave?.(
      ++seen.saves,
      args[2].map((coupling) => coupling.erpId),
    );
    await real.save(...args);
  };
  const runner = new SyncRunner({
    sync: s.sync,
    couplings,
    erpRecords,
    logs: s.syncLog,
    issues: s.syncIssues,
    connector: s.connector,
    setups: s.setups,
    config: { SYNC_BATCH_SIZE: batch, SYNC_MAX_PARALLEL: 1 },
  });
  return { runner, seen };
}

const accountsNamed = (prefix: string) => harness.demo.simulator.store.rows("accounts").filter((row) => String(row.name).startsWith(prefix));

describe("change feeds: what a run reads", () => {
  it("reads the ERP feed as it goes: the first wave is written before the feed is read through, and every record arrives", async () => {
    const company = await enabledCompany();
    await put(company, "customers", customers(company, 600));
    const { runner, seen } = smallWaveRunner(20);
    await runner.runMapping(company, "CUSTOMER");
    expect(seen.read).toBe(600);
    // Two waves under way, one prepared and one being cut: never the whole feed.
    expect(seen.readAtFirstSave).toBeLessThanOrEqual(4 * 20 + 1);
    expect(accountsNamed(`${company} customer `)).toHaveLength(600);
    const couplings = await new CouplingRepository(harness.demo.app.services.tables).load(company, "CUSTOMER");
    expect(couplings.filter((coupling) => !coupling.pending)).toHaveLength(600);
  });

  it("a record changed again after an earlier wave of the run wrote it is written again as its row holds it, once, with one change row left", async () => {
    const company = await enabledCompany();
    // Before the first run: X's first change, then Y's, then X's second (X's older change row is still there).
    await put(company, "customers", [{ id: "X", name: `${company} X v1` }]);
    await put(company, "customers", [{ id: "Y", name: `${company} Y` }]);
    await put(company, "customers", [{ id: "X", name: `${company} X v2` }]);
    expect(await changeRowsOf(company, "X")).toHaveLength(2);
    // One record per wave: X (v1), then Y, then X's later change, after X's wave wrote its coupling.
    await smallWaveRunner(1).runner.runMapping(company, "CUSTOMER");
    expect(accountsNamed(`${company} X`).map((row) => row.name)).toEqual([`${company} X v2`]);
    expect(await changeRowsOf(company, "X")).toHaveLength(1);
    const coupling = await couplingOf(company, "CUSTOMER", "X");
    expect(coupling?.erpModifiedAt).toBe((await harness.demo.app.services.erpRecordStore.get(company, "customers", "X"))?.modifiedAt);
    // The next runs find nothing more to send for X.
    await run(company, "CUSTOMER");
    await sleep(2100);
    const quiet = await run(company, "CUSTOMER");
    expect(quiet.logs.reduce((sum, log) => sum + log.modified + log.inserted + log.failed, 0)).toBe(0);
  });

  it("an ERP change saved during a run, to a record edited in CRM after the run read CRM, is a conflict, not an overwrite", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "X", name: `${company} X` }]);
    await run(company, "CUSTOMER");
    await sleep(2100);
    await run(company, "CUSTOMER");
    const crmId = (await couplingOf(company, "CUSTOMER", "X"))!.crmId;
    // Enough changes that the feed is still being read (a row per page) when the first wave is written.
    await put(company, "customers", customers(company, 60));
    const { runner } = smallWaveRunner(1, {
      pageSize: 1,
      onSave: async (saves) => {
        if (saves !== 1) return;
        // After the run read CRM: a salesperson renames X in CRM, then the ERP renames it too.
        expect((await jane("PATCH", `accounts(${crmId})`, { body: { name: `${company} X by CRM` } })).status).toBe(204);
        await put(company, "customers", [{ id: "X", name: `${company} X by ERP` }]);
      },
    });
    await runner.runMapping(company, "CUSTOMER");
    expect(harness.crmRow("accounts", crmId)?.name, "the CRM edit is not overwritten").toBe(`${company} X by CRM`);
    const issues = await harness.demo.app.services.syncIssues.list(company, "CUSTOMER");
    expect(issues.find((issue) => issue.erpId === "X")?.kind).toBe("conflict");
  });

  it("a wave that fails stops the run before a later change of its record is written: no duplicate", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "X", name: `${company} X v1` }]);
    await put(company, "customers", [{ id: "Y", name: `${company} Y` }]);
    await put(company, "customers", [{ id: "X", name: `${company} X v2` }]);
    // X (v1) is created in CRM, then its coupling cannot be saved; X's later change waits for that wave.
    const failing = smallWaveRunner(1, {
      onSave: async (_saves, erpIds) => {
        if (erpIds.includes("X")) throw new Error("storage unavailable");
      },
    });
    await expect(failing.runner.runMapping(company, "CUSTOMER")).rejects.toThrow("storage unavailable");
    expect(accountsNamed(`${company} X`)).toHaveLength(1);
    await run(company, "CUSTOMER");
    expect(accountsNamed(`${company} X`).map((row) => row.name)).toEqual([`${company} X v2`]);
    expect((await couplingOf(company, "CUSTOMER", "X"))?.pending).toBe(false);
  });

  it("two writers racing on one record, their changes in different waves: CRM gets what the record holds", async () => {
    const company = await enabledCompany();
    const tables = harness.demo.app.services.tables;
    // B takes the later stamp but commits first; A, with the earlier stamp, commits last and wins the record.
    await new ErpRecordRepository(tables, () => new Date(Date.now() + 500)).upsert(company, "customers", [{ id: "RACE", name: `${company} from B` }]);
    await new ErpRecordRepository(tables, () => new Date(Date.now() - 500)).upsert(company, "customers", [{ id: "RACE", name: `${company} from A` }]);
    await smallWaveRunner(1).runner.runMapping(company, "CUSTOMER");
    const coupling = await couplingOf(company, "CUSTOMER", "RACE");
    expect(harness.crmRow("accounts", coupling!.crmId)?.name, "CRM holds what the ERP holds").toBe(`${company} from A`);
    expect(await changeRowsOf(company, "RACE")).toHaveLength(1);
  });

  it("a run with no changes makes the same storage requests for 20 customers as for 1,000, and loads no couplings", async () => {
    const figures = [];
    for (const count of [20, 1000]) {
      const company = await enabledCompany();
      await put(company, "customers", customers(company, count));
      await run(company, "CUSTOMER"); // the initial sync: every customer to CRM
      await run(company, "CUSTOMER"); // reads its own CRM writes back once
      await sleep(2100); // the lag passes
      await run(company, "CUSTOMER");
      figures.push(await storageOfRun(company));
    }
    const [small, large] = figures;
    expect(large!.couplings, "a quiet run decides without the couplings").toBe(0);
    expect(large!.total).toBe(small!.total);
    expect(large!.dataverse).toBeLessThanOrEqual(2);
  });

  it("the run after an initial sync reads back its own CRM writes without reading one ERP record", async () => {
    const company = await enabledCompany();
    await put(company, "customers", customers(company, 300));
    await run(company, "CUSTOMER");
    const next = await storageOfRun(company);
    expect(next.erpPointReads).toBe(0);
    // An edit in CRM is still seen and brought back.
    const coupling = await couplingOf(company, "CUSTOMER", "C00007");
    expect((await jane("PATCH", `accounts(${coupling!.crmId})`, { body: { telephone1: "+47 555 0107" } })).status).toBe(204);
    await run(company, "CUSTOMER");
    expect((await harness.erp(company, "customers", "C00007"))?.phoneNo).toBe("+47 555 0107");
  });

  it("keeps one change row per record: the rows later changes replaced are removed", async () => {
    const company = await enabledCompany();
    await put(company, "customers", customers(company, 3));
    await run(company, "CUSTOMER");
    // Two ERP edits between runs, one with a run after each, and a CRM edit the sync writes to the ERP.
    await put(company, "customers", customers(company, 3, " v2"));
    await put(company, "customers", customers(company, 3, " v3"));
    await run(company, "CUSTOMER");
    await put(company, "customers", customers(company, 3, " v4"));
    await run(company, "CUSTOMER");
    const coupling = await couplingOf(company, "CUSTOMER", "C00001");
    expect((await jane("PATCH", `accounts(${coupling!.crmId})`, { body: { telephone1: "+47 555 0101" } })).status).toBe(204);
    await run(company, "CUSTOMER");
    await run(company, "CUSTOMER");
    for (const id of ["C00000", "C00001", "C00002"]) expect(await changeRowsOf(company, id), id).toHaveLength(1);
    expect((await harness.erp(company, "customers", "C00001"))?.phoneNo).toBe("+47 555 0101");
  });

  it("forgets replaced change rows in transactions, one row already gone (another run met it) included", async () => {
    const company = await enabledCompany();
    const store = new ErpRecordRepository(harness.demo.app.services.tables);
    const stamps: string[] = [];
    for (const version of ["v1", "v2", "v3", "v4"]) {
      const [stored] = await store.upsert(company, "customers", [{ id: "X", name: `${company} ${version}` }]);
      stamps.push(stored!.modifiedAt);
    }
    expect(await changeRowsOf(company, "X")).toHaveLength(4);
    await store.forgetChanges(company, "customers", [{ id: "X", modifiedAt: stamps[0]! }]);
    const replaced = stamps.slice(0, 3).map((modifiedAt) => ({ id: "X", modifiedAt }));
    await new ErpRecordRepository(harness.demo.app.services.tables).forgetChanges(company, "customers", replaced);
    expect(await changeRowsOf(company, "X"), "only the change row of v4 is left").toHaveLength(1);
    const many = Array.from({ length: 90 }, (_, index) => ({ id: `M${index}`, name: `${company} M${index}` }));
    const first = await store.upsert(company, "customers", many);
    await store.upsert(company, "customers", many);
    const storage = harness.demo.app.storage;
    const before = storage.requests.length;
    await store.forgetChanges(company, "customers", first);
    expect(storage.requests.length - before, "one transaction per partition, not one request per row").toBeLessThanOrEqual(16);
    expect((await store.changedSince(company, "customers")).filter((record) => record.id.startsWith("M"))).toHaveLength(90);
  });

  it("an ERP change that commits up to the lag late, with a stamp before the last run's read, is still synchronized", async () => {
    const company = await enabledCompany();
    await put(company, "customers", customers(company, 2));
    await run(company, "CUSTOMER");
    await sleep(2100);
    await run(company, "CUSTOMER");
    // A writer whose stamp was taken 1.5 s ago commits now, after a run read past that time.
    const late = new ErpRecordRepository(harness.demo.app.services.tables, () => new Date(Date.now() - 1500));
    await run(company, "CUSTOMER");
    await late.upsert(company, "customers", [{ id: "LATE", name: `${company} late customer` }]);
    await run(company, "CUSTOMER");
    expect(await couplingOf(company, "CUSTOMER", "LATE")).toBeDefined();
  });

  it("two writers racing on one record: the run sends what the record holds (the last commit), not the later stamp", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "RACE", name: `${company} v0` }]);
    await run(company, "CUSTOMER");
    await sleep(2100);
    await run(company, "CUSTOMER");
    // B takes the later stamp but commits first; A, with the earlier stamp, commits last and wins the record.
    const tables = harness.demo.app.services.tables;
    const b = new ErpRecordRepository(tables, () => new Date(Date.now() + 500));
    const a = new ErpRecordRepository(tables, () => new Date(Date.now() - 500));
    await b.upsert(company, "customers", [{ id: "RACE", name: `${company} from B` }]);
    await a.upsert(company, "customers", [{ id: "RACE", name: `${company} from A` }]);
    expect((await harness.erp(company, "customers", "RACE"))?.name).toBe(`${company} from A`);
    await run(company, "CUSTOMER");
    const coupling = await couplingOf(company, "CUSTOMER", "RACE");
    expect(harness.crmRow("accounts", coupling!.crmId)?.name, "CRM holds what the ERP holds").toBe(`${company} from A`);
    expect(await changeRowsOf(company, "RACE")).toHaveLength(1);
  });

  it("keeps the lag lists of a bulk load within the 1 MiB an Azure entity may hold, dropping the oldest entries first", async () => {
    const tables = harness.demo.app.services.tables;
    const sync = harness.demo.app.services.sync;
    const company = await enabledCompany();
    const entry = (side: string, index: number) => `${side}-${String(index).padStart(6, "0")}-8c1f3e0a-4d5b-4c7e-9a2f-1b3c5d7e9f11@2026-11-26T10:00:00Z`;
    const erp = Array.from({ length: 12_000 }, (_, index) => entry("e", index));
    const crm = Array.from({ length: 12_000 }, (_, index) => entry("c", index));
    await sync.saveLagSeen(company, "CUSTOMER", { erp, crm });
    const row = await (await tables.table("synclag")).getEntity<Record<string, unknown>>(company, "CUSTOMER");
    const bytes = Object.values(row).reduce<number>((sum, value) => sum + (typeof value === "string" ? value.length * 2 : 8), 0);
    expect(bytes, "UTF-16 bytes of the stored row").toBeLessThan(1024 * 1024);
    const read = await sync.lagSeen(company, "CUSTOMER");
    expect(read.erp.length).toBeGreaterThan(3000);
    expect(read.erp.at(-1)).toBe(erp.at(-1));
    expect(erp.slice(-read.erp.length)).toEqual(read.erp);
    expect(crm.slice(-read.crm.length)).toEqual(read.crm);
  });
});
