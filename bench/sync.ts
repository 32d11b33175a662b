/**
 * npm run bench:sync — the CUSTOMER mapping against the simulator with 25 ms latency per request and its
 * default service-protection limits: an initial sync of 10,000 customers ERP -> CRM, a run with no
 * changes, and a run with 1,000 changes each way. Prints rates and counts (ratios, not timings, are the
 * stable figures on a noisy machine) and checks the targets of issue 4.
 */
import { randomBytes } from "node:crypto";
import { loadConfig } from "../src/lib/config";
import { createServices } from "../src/lib/services";
import { startAzurite } from "../src/local/azurite";
import { demoPassword } from "../test/simulator/fixture";
import { startDataverseSimulator } from "../test/simulator/simulator";
import { requestCounter } from "../test/support/request-counter";

const customers = Number(process.env.BENCH_CUSTOMERS ?? 10_000);
const changes = Number(process.env.BENCH_CHANGES ?? 1_000);
const latencyMs = 25;
const janeId = "a1b2c3d4-0006-4000-8000-000000000006";

interface Figures {
  run: string;
  records: number;
  seconds: number;
  dataverseRequests: number;
  tableOperations: number;
  throttled: number;
  failed: number;
}

async function main(): Promise<void> {
  const azurite = await startAzurite();
  const simulator = await startDataverseSimulator({ latencyMs });
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  try {
    const storage = requestCounter();
    const config = loadConfig({
      AzureWebJobsStorage: azurite.connectionString,
      DATAVERSE_ALLOWED_HOSTS: simulator.host,
      AUTHORITY_HOST: simulator.url,
      LOCAL_SECRET_KEY: randomBytes(32).toString("base64"),
      SYNC_BATCH_SIZE: process.env.SYNC_BATCH_SIZE,
      SYNC_MAX_PARALLEL: process.env.SYNC_MAX_PARALLEL,
    });
    const services = createServices(config, { trustedCa: simulator.ca, tableOptions: { additionalPolicies: [storage.policy] } });
    const company = "bench";
    await services.setup.save(company, {
      serverAddress: simulator.url,
      authenticationType: "Office365",
      userName: "integration@demo.example",
      password: demoPassword,
    });
    await services.lifecycle.enable(company, { useDefaultSyncSetup: true });

    const seed = Array.from({ length: customers }, (_, index) => ({
      id: `C${String(index + 1).padStart(6, "0")}`,
      name: `Customer ${index + 1}`,
      city: "Oslo",
      phoneNo: `+47 ${index}`,
    }));
    for (let start = 0; start < seed.length; start += 1000) await services.erpRecordStore.upsert(company, "customers", seed.slice(start, start + 1000));

    const measure = async (run: string, records: number): Promise<Figures> => {
      simulator.resetStats();
      storage.reset();
      const started = performance.now();
      const result = await services.runner.runMapping(company, "CUSTOMER");
      const seconds = (performance.now() - started) / 1000;
      return {
        run,
        records,
        seconds,
        dataverseRequests: simulator.stats.requests,
        tableOperations: storage.requests.length,
        throttled: simulator.stats.throttled,
        failed: result.logs.reduce((sum, log) => sum + log.failed, 0),
      };
    };

    const initial = await measure(`initial sync, ${customers} customers ERP -> CRM`, customers);
    // The first run after a sync reads back that sync's own writes once (the CRM feed does not filter them out,
    // so a user's edit racing a write is never lost); after that, a run with nothing to do is what every timer
    // tick costs.
    const readBack = await measure("next run (reads back its own writes once)", 0);
    const idle = await measure("run with 0 changes", 0);

    const changed = seed.slice(0, changes).map((record) => ({ ...record, city: "Bergen" }));
    await services.erpRecordStore.upsert(company, "customers", changed);
    const accounts = simulator.store.rows("accounts").slice(changes, changes * 2);
    for (const account of accounts) simulator.store.update("accounts", String(account.accountid), { telephone1: "+47 555 0199" }, janeId);
    const mixed = await measure(`${changes} changes each way`, changes * 2);

    const limits = simulator.limits;
    const parallel = Math.min(config.SYNC_MAX_PARALLEL, 4 /* the simulator's x-ms-dop-hint */, limits.maxConcurrent);
    const byLatency = (parallel * config.SYNC_BATCH_SIZE) / (latencyMs / 1000);
    const byRequestLimit = (limits.requestsPerWindow * config.SYNC_BATCH_SIZE) / limits.windowSeconds;
    // Execution time: the window's budget over the server time charged per record (bulk rows plus request share).
    const perRecordMs = limits.rowCostMs + limits.requestCostMs / config.SYNC_BATCH_SIZE;
    const byExecutionTime = limits.executionTimeMsPerWindow / perRecordMs / limits.windowSeconds;
    const bound = Math.min(byLatency, byRequestLimit, byExecutionTime);

    const rows = [initial, readBack, idle, mixed].map((figures) => ({
      run: figures.run,
      "records/s": figures.records > 0 ? Math.round(figures.records / figures.seconds) : "-",
      seconds: figures.seconds.toFixed(2),
      "Dataverse requests": figures.dataverseRequests,
      "requests/record": figures.records > 0 ? (figures.dataverseRequests / figures.records).toFixed(4) : "-",
      "table ops/record": figures.records > 0 ? (figures.tableOperations / figures.records).toFixed(3) : String(figures.tableOperations),
      throttled: figures.throttled,
      failed: figures.failed,
    }));
    console.log(
      `\nSync benchmark: CUSTOMER mapping, simulator latency ${latencyMs} ms/request, limits ${limits.requestsPerWindow} requests and ${limits.executionTimeMsPerWindow} ms execution per ${limits.windowSeconds} s, ${limits.maxConcurrent} concurrent (server cost ${limits.requestCostMs} ms/request + ${limits.rowCostMs} ms/row); batch ${config.SYNC_BATCH_SIZE}, parallel ${config.SYNC_MAX_PARALLEL} (dop hint 4)\n`,
    );
    console.table(rows);
    const initialRate = initial.records / initial.seconds;
    console.log(
      `Sustained bound for these settings (a run that spends less than one window's execution budget can go faster): ${Math.round(bound)} records/s (latency: ${Math.round(byLatency)}, request limit: ${Math.round(byRequestLimit)}, execution-time limit: ${Math.round(byExecutionTime)}); achieved ${(initialRate / bound).toFixed(3)} of it.`,
    );
    console.log(`Peak RSS: ${Math.round(peakRss / 1024 / 1024)} MiB`);

    const checks = [
      ["at most 0.02 Dataverse requests per record on the initial sync", initial.dataverseRequests / initial.records <= 0.02],
      ["at least 1,000 records/s on the initial sync", initialRate >= 1000],
      ["a 0-change run costs at most one Dataverse request per direction", idle.dataverseRequests <= 2],
      ["0 failed records under all three service protection limits", [initial, readBack, idle, mixed].every((figures) => figures.failed === 0)],
    ] as const;
    console.log("");
    for (const [target, met] of checks) console.log(`${met ? "PASS" : "FAIL"}  ${target}`);
    process.exitCode = checks.every(([, met]) => met) ? 0 : 1;
  } finally {
    clearInterval(sampler);
    await simulator.close();
    await azurite.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
