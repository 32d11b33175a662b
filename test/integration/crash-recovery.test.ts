import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { jobMessages } from "../../src/lib/sync/job-runner";
import { defaultLeaseSeconds } from "../../src/lib/sync/run/run-context";
import { settings } from "../../src/lib/config";
import { useSyncHarness } from "../support/sync-harness";

// An instance killed midway (kill -9: no finally, no lease released), its storage kept: another instance takes
// the work over once the dead one's leases lapse, and nothing is lost or written twice.
const harness = useSyncHarness({ simulator: { latencyMs: 15 } });
const leaseSeconds = 10;

function startWorker(mode: "job" | "full", company: string): ChildProcess {
  const dir = mkdtempSync(join(tmpdir(), "crash-worker-"));
  const caFile = join(dir, "ca.pem");
  writeFileSync(caFile, harness.demo.simulator.ca);
  return spawn(process.execPath, ["--import", "tsx", "test/support/crash-worker.ts", mode, company, "CUSTOMER"], {
    env: {
      ...process.env,
      DATAVERSE_ALLOWED_HOSTS: harness.demo.simulator.host,
      AUTHORITY_HOST: harness.demo.simulator.authorityHost,
      CRASH_WORKER_CA_FILE: caFile,
      SYNC_LEASE_SECONDS: String(leaseSeconds),
      SYNC_BATCH_SIZE: "20",
      SYNC_MAX_PARALLEL: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

const accountsOf = (company: string) => harness.demo.simulator.store.rows("accounts").filter((row) => String(row.name).startsWith(`${company} `));

async function killWhenAccounts(child: ChildProcess, company: string, atLeast: number): Promise<number> {
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  for (let waited = 0; accountsOf(company).length < atLeast; waited += 50) {
    if (waited > 60_000 || child.exitCode !== null) throw new Error(`The worker wrote ${accountsOf(company).length} accounts, then: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill("SIGKILL");
  await exited;
  expect(output).not.toContain("finished");
  return Date.now();
}

/**
 * The timer and the queue worker of another instance, every half second until the entry runs; answers when the
 * timer first found the entry due again (its run's own length, on a busy machine, is not what is measured).
 */
async function runUntilProcessed(company: string): Promise<number> {
  const jobs = harness.demo.app.services.jobs;
  let dueAt: number | undefined;
  for (let waited = 0; ; waited += 500) {
    const due = (await harness.demo.app.services.sync.dueJobs("CUSTOMER", new Date().toISOString())).includes(company);
    if (due) dueAt ??= Date.now();
    if (due && (await jobs.runJob(company, "CUSTOMER")) === "processed") {
      const entry = (await harness.demo.app.services.sync.job(company, "CUSTOMER"))!.value;
      if (entry.lastError !== jobMessages.mappingBusy) return dueAt!;
    }
    if (waited > 90_000) throw new Error("The entry never ran again.");
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function customers(company: string, count: number): Promise<void> {
  await harness.put(
    company,
    "customers",
    Array.from({ length: count }, (_, index) => ({ id: `K${String(index).padStart(5, "0")}`, name: `${company} Customer ${index}` })),
  );
}

async function expectEachCustomerOnceCoupled(company: string, count: number): Promise<void> {
  const accounts = accountsOf(company);
  expect(new Set(accounts.map((row) => row.name)).size).toBe(count);
  expect(accounts).toHaveLength(count);
  const couplings = await harness.demo.app.services.couplings.load(company, "CUSTOMER");
  expect(couplings.filter((coupling) => !coupling.pending)).toHaveLength(count);
  expect(new Set(couplings.map((coupling) => coupling.crmId)).size).toBe(count);
}

describe("an instance killed mid-run", () => {
  it("frees its job entry and mapping within a lease period; the next run finishes the work, nothing lost or doubled", { timeout: 120_000 }, async () => {
    const company = await harness.enabledCompany();
    await customers(company, 400);
    const killedAt = await killWhenAccounts(startWorker("job", company), company, 60);
    const entry = (await harness.demo.app.services.sync.job(company, "CUSTOMER"))!.value;
    expect(entry.status).toBe("In Process");

    const dueAt = await runUntilProcessed(company);
    // Due again once the dead worker's lease lapsed (plus this test's half-second polling and a busy machine).
    expect(dueAt - killedAt).toBeLessThan((leaseSeconds + 5) * 1000);
    const after = (await harness.demo.app.services.sync.job(company, "CUSTOMER"))!.value;
    expect(after).toMatchObject({ status: "Ready", attempts: 0 });
    expect(after.lastError).toBeUndefined();
    await expectEachCustomerOnceCoupled(company, 400);
  });

  it("a full synchronization killed midway holds the jobs only for a lease period", { timeout: 120_000 }, async () => {
    const company = await harness.enabledCompany();
    await customers(company, 400);
    const killedAt = await killWhenAccounts(startWorker("full", company), company, 60);
    const held = (await harness.demo.app.services.sync.job(company, "CUSTOMER"))!.value;
    expect(held.heldByFullSync, JSON.stringify(held)).toBeDefined();
    expect(await harness.demo.app.services.jobs.runJob(company, "CUSTOMER")).toBe("yielded");

    const dueAt = await runUntilProcessed(company);
    expect(dueAt - killedAt).toBeLessThan((leaseSeconds + 5) * 1000);
    await expectEachCustomerOnceCoupled(company, 400);
  });

  it(
    "a rerun after the coupling store lost what the run wrote (couplings and manifest) writes the same CRM rows, none twice",
    { timeout: 120_000 },
    async () => {
      const company = await harness.enabledCompany();
      await customers(company, 200);
      await killWhenAccounts(startWorker("job", company), company, 60);
      // The storage of an instance that died with it (npm start -- --persist killed before Azurite flushed):
      // every coupling and manifest row of the company is gone; the ERP records and their changes are kept.
      await harness.demo.app.services.couplings.removeCompany(company);
      expect(await harness.demo.app.services.couplings.load(company, "CUSTOMER")).toHaveLength(0);
      const written = new Map(accountsOf(company).map((row) => [row.name, row.accountid]));

      await runUntilProcessed(company);
      await harness.demo.app.services.runner.runMapping(company, "CUSTOMER", { full: true });
      await expectEachCustomerOnceCoupled(company, 200);
      // The rows the dead run wrote are the ones the customers are coupled to now.
      for (const row of accountsOf(company)) if (written.has(row.name)) expect(row.accountid).toBe(written.get(row.name));
    },
  );

  it("two companies with the same ERP numbers get rows of their own", async () => {
    const first = await harness.enabledCompany();
    const second = await harness.enabledCompany();
    for (const company of [first, second]) {
      await harness.put(company, "customers", [{ id: "10000", name: `${company} Adatum` }]);
      await harness.run(company, "CUSTOMER");
    }
    const ids = await Promise.all([first, second].map(async (company) => (await harness.couplingOf(company, "CUSTOMER", "10000"))!.crmId));
    expect(new Set(ids).size).toBe(2);
    expect(harness.crmRow("accounts", ids[0]!)!.name).toBe(`${first} Adatum`);
    expect(harness.crmRow("accounts", ids[1]!)!.name).toBe(`${second} Adatum`);
  });

  it("a run that lives longer than its lease keeps it: another instance never takes the entry or the mapping meanwhile", { timeout: 120_000 }, async () => {
    const company = await harness.enabledCompany();
    await customers(company, 300);
    harness.demo.simulator.latencyMs = 800;
    const child = startWorker("job", company);
    let output = "";
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (output += chunk));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      const started = Date.now();
      let tries = 0;
      // Twice the lease and more: the worker's heartbeat renews it every third.
      while (child.exitCode === null && Date.now() - started < (leaseSeconds * 2 + 5) * 1000) {
        const entry = (await harness.demo.app.services.sync.job(company, "CUSTOMER"))!.value;
        if (entry.status === "In Process") {
          tries++;
          expect(await harness.demo.app.services.sync.dueJobs("CUSTOMER", new Date().toISOString())).not.toContain(company);
          expect(await harness.demo.app.services.jobs.runJob(company, "CUSTOMER")).toBe("yielded");
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      expect(Date.now() - started).toBeGreaterThan(leaseSeconds * 1000);
      expect(tries).toBeGreaterThanOrEqual(leaseSeconds + 3);
    } finally {
      harness.demo.simulator.latencyMs = 15;
      await exited;
    }
    expect(output).toContain("finished");
    await expectEachCustomerOnceCoupled(company, 300);
  });

  it("with the default settings, a killed run's job runs again within 3 minutes: one lease and one timer period", () => {
    const lease = settings.SYNC_LEASE_SECONDS.schema.parse(undefined);
    expect(lease).toBe(defaultLeaseSeconds);
    // The timers fire every minute (SYNC_SCHEDULE's default); the entry is due once its lease lapsed.
    expect(settings.SYNC_SCHEDULE.schema.parse(undefined)).toBe("0 */1 * * * *");
    expect(lease + 60).toBeLessThanOrEqual(180);
  });
});
