/**
 * npm run bench:sync — the CUSTOMER mapping against the strict simulator at Dataverse's documented limits,
 * with requests taking the server time they are charged (bulk rows included) and 25 ms of latency. The
 * simulator and Azurite run in their own processes, and each measured run is a connector process of its own
 * (bench/sync-worker.ts, as a Function instance picking up the job), so the CPU and peak memory printed are that
 * run's own; Azurite's and the simulator's CPU per record are printed beside it (Azurite scans a table to answer a
 * query, which Azure does not).
 *
 * Runs: an initial sync of each size in BENCH_SIZES (default 10,000 and 100,000 customers), a run with no
 * changes at each size, 1,000 changes each way, the same records written one request each through
 * dynamics-web-api (what users would pick instead), and two workers on two companies (scale-out). Prints
 * figures and PASS/FAIL lines, and rewrites the README's results table (between the bench:sync markers).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, platform, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Services } from "../src/lib/services";
import { startAzurite } from "../src/local/azurite";
import { demoClientId, demoClientSecret, demoPassword } from "../test/simulator/fixture";
import type { ServiceProtectionLimits } from "../test/simulator/service-protection";
import type { SimulatorStats as SimulatorCounters } from "../test/simulator/simulator";
import { type BenchTarget, benchServices } from "./bench-services";
import { operationCounter } from "./operation-counter";
import type { WorkerResult } from "./sync-worker";

const sizes = (process.env.BENCH_SIZES ?? "10000,100000").split(",").map(Number);
const changes = Number(process.env.BENCH_CHANGES ?? 1_000);
const recordByRecordCount = Number(process.env.BENCH_RBR_RECORDS ?? 500);
const scaleRecords = Number(process.env.BENCH_SCALE_RECORDS ?? 10_000);
const latencyMs = 25;
// Workers run with the Node.js arguments the deployment gives the Functions worker on an instance of the default size.
const nodeWorker = JSON.parse(readFileSync("infra/node-worker.json", "utf8")) as { defaultInstanceMemoryMB: number; maxOldSpaceSizeMB: Record<string, number> };
const workerHeapMB = nodeWorker.maxOldSpaceSizeMB[nodeWorker.defaultInstanceMemoryMB]!;
const workerArguments = [`--max-old-space-size=${workerHeapMB}`, ...(process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean)];

interface SimulatorProcess {
  url: string;
  host: string;
  caFile: string;
  ca: string;
  child: ChildProcess;
}

/** What the simulator's control endpoint answers: its counters and its limits. */
interface SimulatorStats {
  stats: Pick<SimulatorCounters, "requests" | "throttled" | "throttledBy" | "maxInFlight" | "rows">;
  limits: ServiceProtectionLimits;
}

/** The simulator in its own process, taking the execution time it charges. */
async function startSimulatorProcess(): Promise<SimulatorProcess> {
  const caFile = join(tmpdir(), `bench-simulator-${process.pid}.pem`);
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/simulator/main.ts", "--port", "0", "--latency", String(latencyMs), "--spend-execution-time", "--control", "--ca-file", caFile],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    if (line.startsWith("SIMULATOR ")) {
      const ready = JSON.parse(line.slice("SIMULATOR ".length)) as { url: string; host: string; caFile: string };
      return { ...ready, ca: readFileSync(caFile, "utf8"), child };
    }
  }
  throw new Error("The simulator process ended before it was ready.");
}

async function control(simulator: SimulatorProcess, action: "stats" | "reset"): Promise<SimulatorStats> {
  const { request } = await import("node:https");
  return new Promise((resolve, reject) => {
    const call = request(`${simulator.url}/_simulator/${action}`, { method: action === "reset" ? "POST" : "GET", ca: simulator.ca }, (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => resolve(JSON.parse(text) as SimulatorStats));
    });
    call.on("error", reject);
    call.end();
  });
}

/**
 * Runs the CUSTOMER mapping of each company in a connector process of its own, all started together once every
 * one is ready and `beforeGo` has run (startup and sign-in are not measured). Resolves with what each run cost its
 * process.
 */
async function runWorkers(target: BenchTarget, companies: string[], beforeGo: () => Promise<void>): Promise<WorkerResult[]> {
  const workers = companies.map((company) => {
    const child = spawn(process.execPath, [...workerArguments, "--import", "tsx", "bench/sync-worker.ts"], {
      env: { ...process.env, BENCH_TARGET: JSON.stringify(target), BENCH_COMPANY: company },
      stdio: ["pipe", "pipe", "inherit"],
    });
    const lines = createInterface({ input: child.stdout! });
    // A worker that ends early fails both, so the benchmark stops (and its finally stops Azurite and the simulator).
    const exited = new Promise<never>((_resolve, reject) =>
      child.on("exit", (code) => reject(new Error(`The worker for ${company} exited with ${code} before its result.`))),
    );
    exited.catch(() => undefined);
    const ready = Promise.race([new Promise<void>((resolve) => lines.on("line", (line) => line === "READY" && resolve())), exited]);
    const result = Promise.race([
      new Promise<WorkerResult>((resolve) =>
        lines.on("line", (line) => line.startsWith("RESULT ") && resolve(JSON.parse(line.slice("RESULT ".length)) as WorkerResult)),
      ),
      exited,
    ]);
    result.catch(() => undefined);
    return { child, ready, result };
  });
  await Promise.all(workers.map((worker) => worker.ready));
  await beforeGo();
  for (const worker of workers) worker.child.stdin!.end("go\n");
  return Promise.all(workers.map((worker) => worker.result));
}

async function enabledCompany(services: Services, company: string, url: string, user: "integration" | "application" | "jane"): Promise<void> {
  const credentials =
    user === "application"
      ? { authenticationType: "ClientSecret", clientId: demoClientId, clientSecret: demoClientSecret }
      : { authenticationType: "Office365", userName: `${user}@demo.example`, password: demoPassword };
  await services.setup.save(company, { serverAddress: url, ...credentials });
  await services.lifecycle.enable(company, { useDefaultSyncSetup: true });
}

async function seed(services: Services, company: string, count: number, prefix = "C"): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    const records = Array.from({ length: Math.min(1000, count - start) }, (_, offset) => {
      const index = start + offset + 1;
      return { id: `${prefix}${String(index).padStart(6, "0")}`, name: `${company} customer ${index}`, city: "Oslo", phoneNo: `+47 ${index}` };
    });
    await services.erpRecordStore.upsert(company, "customers", records);
  }
}

/** CPU microseconds another process has used so far (Linux /proc; 0 elsewhere). */
function processCpuMicros(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime, in clock ticks (USER_HZ, 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return 0;
  }
}

/** What a measured run reports: its records' outcome and what it cost its connector process(es). */
interface RunCost {
  failed: number;
  seconds: number;
  cpuMicros: number;
  peakRssMiB: number;
  liveHeapMiB: number;
  tableOperations: number;
}

/** Workers started together: the wall time from the first start to the last end; CPU and table operations summed. */
function costOf(results: WorkerResult[]): RunCost {
  return {
    failed: results.reduce((sum, result) => sum + result.failed, 0),
    seconds: (Math.max(...results.map((result) => result.endedAt)) - Math.min(...results.map((result) => result.startedAt))) / 1000,
    cpuMicros: results.reduce((sum, result) => sum + result.cpuMicros, 0),
    peakRssMiB: Math.round(Math.max(...results.map((result) => result.maxRssKiB)) / 1024),
    liveHeapMiB: Math.round(Math.max(...results.map((result) => result.liveHeapKiB)) / 1024),
    tableOperations: results.reduce((sum, result) => sum + result.tableOperations, 0),
  };
}

interface RunFigures {
  run: string;
  records: number;
  seconds: number;
  dataverseRequests: number;
  throttled: number;
  throttledBy: Record<string, number>;
  tableOperations: number;
  cpuMicrosPerRecord: number;
  azuriteCpuMicrosPerRecord: number;
  simulatorCpuMicrosPerRecord: number;
  peakRssMiB: number;
  liveHeapMiB: number;
  failed: number;
}

async function main(): Promise<void> {
  const azurite = await startAzurite();
  const simulator = await startSimulatorProcess();
  const target: BenchTarget = {
    azurite: azurite.connectionString,
    simulatorUrl: simulator.url,
    simulatorHost: simulator.host,
    ca: simulator.ca,
    localSecretKey: randomBytes(32).toString("base64"),
  };
  const results: RunFigures[] = [];
  try {
    // The parent sets up companies and seeds the ERP; every measured run is a worker process.
    const services = benchServices(target, operationCounter().policy);
    const measure = async (run: string, records: number, work: (beforeGo: () => Promise<void>) => Promise<RunCost>): Promise<RunFigures> => {
      let azuriteCpu = 0;
      let simulatorCpu = 0;
      const cost = await work(async () => {
        await control(simulator, "reset");
        azuriteCpu = processCpuMicros(azurite.pid);
        simulatorCpu = processCpuMicros(simulator.child.pid!);
      });
      const { stats } = await control(simulator, "stats");
      const figures: RunFigures = {
        run,
        records,
        seconds: cost.seconds,
        dataverseRequests: stats.requests,
        throttled: stats.throttled,
        throttledBy: stats.throttledBy,
        tableOperations: cost.tableOperations,
        cpuMicrosPerRecord: records > 0 ? cost.cpuMicros / records : 0,
        azuriteCpuMicrosPerRecord: records > 0 ? (processCpuMicros(azurite.pid) - azuriteCpu) / records : 0,
        simulatorCpuMicrosPerRecord: records > 0 ? (processCpuMicros(simulator.child.pid!) - simulatorCpu) / records : 0,
        peakRssMiB: cost.peakRssMiB,
        liveHeapMiB: cost.liveHeapMiB,
        failed: cost.failed,
      };
      results.push(figures);
      console.log(
        `  ${run}: ${records > 0 ? `${Math.round(records / cost.seconds)} records/s, ` : ""}${stats.requests} requests, ${cost.seconds.toFixed(1)} s`,
      );
      return figures;
    };
    const runCustomers =
      (...companies: string[]) =>
      async (beforeGo: () => Promise<void>) =>
        costOf(await runWorkers(target, companies, beforeGo));

    const initial: RunFigures[] = [];
    const idle: RunFigures[] = [];
    for (const size of sizes) {
      const company = `bench-${size}`;
      await enabledCompany(services, company, simulator.url, "integration");
      await seed(services, company, size);
      initial.push(await measure(`initial sync, ${size} customers`, size, runCustomers(company)));
      await measure(`next run at ${size} (reads its own writes back once)`, 0, runCustomers(company));
      idle.push(await measure(`run with 0 changes at ${size}`, 0, runCustomers(company)));
    }

    // 1,000 changes each way: ERP records, and CRM edits by a salesperson (through the Web API, as Jane).
    const first = `bench-${sizes[0]}`;
    await enabledCompany(services, "bench-jane", simulator.url, "jane");
    const jane = await services.connector.client((await services.setups.get("bench-jane"))!.value);
    const couplings = (await services.couplings.load(first, "CUSTOMER")).slice(changes, changes * 2);
    await jane.updateMultiple(
      "accounts",
      couplings.map((coupling) => ({ accountid: coupling.crmId, telephone1: "+47 555 0199" })),
    );
    const changed = (await services.erpRecordStore.changedSince(first, "customers")).slice(0, changes).map((record) => ({ ...record.fields, city: "Bergen" }));
    await services.erpRecordStore.upsert(first, "customers", changed);
    const mixed = await measure(`${changes} changes each way`, changes * 2, runCustomers(first));

    // What users would pick instead: one request per record through dynamics-web-api, same simulator.
    await control(simulator, "reset");
    const other = await new Promise<{ records: number; seconds: number; requests: number; failed: number }>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", "bench/record-by-record.ts"], {
        env: {
          ...process.env,
          NODE_EXTRA_CA_CERTS: simulator.caFile,
          SIM_URL: simulator.url,
          SIM_PASSWORD: demoPassword,
          RECORDS: String(recordByRecordCount),
        },
        stdio: ["ignore", "pipe", "inherit"],
      });
      let output = "";
      child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(output.trim().split("\n").at(-1)!)) : reject(new Error(`record-by-record exited ${code}`))));
    });
    const otherStats = (await control(simulator, "stats")).stats;
    console.log(`  dynamics-web-api, one request per record: ${Math.round(other.records / other.seconds)} records/s, ${otherStats.requests} requests`);

    // Scale-out: two workers (their own services, as two Function instances) on two companies, each signing
    // in as its own user, so each has its own service protection budget, sharing one storage account. They are
    // compared with one worker measured just before them, on storage holding what theirs holds: Azurite answers
    // a query by scanning the whole table, so a run measured earlier, on emptier tables, is not a fair baseline.
    const scaleCompanies = [
      ["bench-scale-one", "integration", "O"],
      ["bench-scale-a", "integration", "A"],
      ["bench-scale-b", "application", "B"],
    ] as const;
    for (const [company, user, prefix] of scaleCompanies) {
      await enabledCompany(services, company, simulator.url, user);
      // The companies share one organization: measured as ERP -> CRM, so none imports another's accounts
      // (every account another company wrote is a CRM-born customer to a company signing in as another user).
      await services.syncAdmin.updateMapping(company, "CUSTOMER", { direction: "toCrm" }, undefined);
      await seed(services, company, scaleRecords, prefix);
    }
    const alone = await measure(`one worker, one company, ${scaleRecords} customers (same storage as the next)`, scaleRecords, runCustomers("bench-scale-one"));
    const scale = await measure(`two workers, two companies, ${scaleRecords} customers each`, scaleRecords * 2, runCustomers("bench-scale-a", "bench-scale-b"));

    // The bound from all three limits for one user (and the concurrency the client runs at).
    const { limits } = await control(simulator, "stats");
    const batch = services.config.SYNC_BATCH_SIZE;
    const parallel = Math.min(services.config.SYNC_MAX_PARALLEL, 4 /* the simulator's x-ms-dop-hint */, limits.maxConcurrent);
    const requestMs = limits.requestCostMs + batch * limits.rowCostMs + latencyMs;
    const byConcurrency = (parallel * batch * 1000) / requestMs;
    const byRequests = (limits.requestsPerWindow * batch) / limits.windowSeconds;
    const perRecordMs = limits.rowCostMs + limits.requestCostMs / batch;
    const byExecution = limits.executionTimeMsPerWindow / perRecordMs / limits.windowSeconds;
    const bound = Math.min(byConcurrency, byRequests, byExecution);

    const rate = (figures: RunFigures) => figures.records / figures.seconds;
    const largest = initial.at(-1)!;
    const smallest = initial[0]!;
    const otherRate = other.records / other.seconds;
    const oursPerRecord = largest.dataverseRequests / largest.records;
    const otherPerRecord = otherStats.requests / other.records;
    const single = rate(smallest);
    const machine = `${cpus()[0]?.model ?? "cpu"} x${cpus().length}, ${Math.round(totalmem() / 1024 ** 3)} GiB, ${platform()} ${release()}, Node ${process.versions.node}`;
    console.log(`\nMachine: ${machine}`);
    console.log(`Workers: ${workerArguments.join(" ")} (a ${nodeWorker.defaultInstanceMemoryMB} MB instance, infra/node-worker.json).`);
    console.log(
      `Limits per user: ${limits.requestsPerWindow} requests and ${limits.executionTimeMsPerWindow} ms execution per ${limits.windowSeconds} s, ${limits.maxConcurrent} concurrent; server cost ${limits.requestCostMs} ms/request + ${limits.rowCostMs} ms/row (spent, not only counted); latency ${latencyMs} ms; batch ${batch}, dop hint 4.`,
    );
    console.log(
      `Bound: ${Math.round(bound)} records/s (concurrency ${parallel} x ${batch} rows per ${requestMs} ms: ${Math.round(byConcurrency)}; requests: ${Math.round(byRequests)}; execution time: ${Math.round(byExecution)}).`,
    );
    const table = results.map((figures) => ({
      run: figures.run,
      "records/s": figures.records > 0 ? Math.round(rate(figures)) : "-",
      "of bound": figures.records > 0 && !figures.run.startsWith("two workers") ? (rate(figures) / bound).toFixed(2) : "-",
      "requests/record": figures.records > 0 ? (figures.dataverseRequests / figures.records).toFixed(4) : String(figures.dataverseRequests),
      "table ops/record": figures.records > 0 ? (figures.tableOperations / figures.records).toFixed(3) : String(figures.tableOperations),
      "CPU us/record": figures.records > 0 ? Math.round(figures.cpuMicrosPerRecord) : "-",
      "Azurite CPU us/record": figures.records > 0 ? Math.round(figures.azuriteCpuMicrosPerRecord) : "-",
      "simulator CPU us/record": figures.records > 0 ? Math.round(figures.simulatorCpuMicrosPerRecord) : "-",
      "peak RSS MiB": figures.peakRssMiB,
      "live heap MiB": figures.liveHeapMiB > 0 ? figures.liveHeapMiB : "-",
      "429s": figures.throttled,
      failed: figures.failed,
    }));
    table.push({
      run: `dynamics-web-api, one request per record (${other.records})`,
      "records/s": Math.round(otherRate),
      "of bound": (otherRate / bound).toFixed(2),
      "requests/record": otherPerRecord.toFixed(4),
      "table ops/record": "-",
      "CPU us/record": "-",
      "Azurite CPU us/record": "-",
      "simulator CPU us/record": "-",
      "peak RSS MiB": 0,
      "live heap MiB": "-",
      "429s": otherStats.throttled,
      failed: other.failed,
    });
    console.table(table);

    const checks: [string, boolean][] = [
      [`initial sync of ${largest.records}: at least 0.9 of the bound (${(rate(largest) / bound).toFixed(2)})`, rate(largest) >= 0.9 * bound],
      [`initial sync of ${largest.records}: 0 failed records`, largest.failed === 0],
      [`initial sync of ${largest.records}: at most 0.0025 requests per record (${oursPerRecord.toFixed(4)})`, oursPerRecord <= 0.0025],
      [`connector CPU at most 200 us per record (${Math.round(largest.cpuMicrosPerRecord)})`, largest.cpuMicrosPerRecord <= 200],
      [
        `peak RSS at ${largest.records} at most 1.25x that at ${smallest.records} (${(largest.peakRssMiB / smallest.peakRssMiB).toFixed(3)}x)`,
        largest.peakRssMiB <= 1.25 * smallest.peakRssMiB,
      ],
      ["a run with no changes: at most 1 Dataverse request per direction", idle.every((figures) => figures.dataverseRequests <= 2)],
      [
        `a run with no changes: table reads independent of size (${idle.map((figures) => figures.tableOperations).join(" vs ")})`,
        idle.every((figures) => figures.tableOperations === idle[0]!.tableOperations),
      ],
      [`at least 50x fewer Dataverse requests than record by record (${(otherPerRecord / oursPerRecord).toFixed(0)}x)`, otherPerRecord >= 50 * oursPerRecord],
      [`at least 10x the throughput of record by record (${(single / otherRate).toFixed(1)}x)`, single >= 10 * otherRate],
      [`two workers on two companies: at least 1.7x one worker (${(rate(scale) / rate(alone)).toFixed(3)}x)`, rate(scale) >= 1.7 * rate(alone)],
      ["0 failed records because of throttling, in every run", results.every((figures) => figures.failed === 0) && mixed.failed === 0],
    ];
    console.log("");
    for (const [target, met] of checks) console.log(`${met ? "PASS" : "FAIL"}  ${target}`);

    // The README's results table, regenerated.
    const markdown = [
      `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}; workers run with ${workerArguments.join(" ")} (as on a ${nodeWorker.defaultInstanceMemoryMB} MB instance); bound ${Math.round(bound)} records/s (concurrency ${Math.round(byConcurrency)}, requests ${Math.round(byRequests)}, execution time ${Math.round(byExecution)}).`,
      "",
      "| run | records/s | of bound | requests/record | table ops/record | CPU µs/record | Azurite CPU µs/record | simulator CPU µs/record | peak RSS MiB | live heap MiB | 429s | failed |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
      ...table.map((row) => `| ${Object.values(row).join(" | ")} |`),
      "",
      ...checks.map(([target, met]) => `- ${met ? "PASS" : "FAIL"} ${target}`),
    ].join("\n");
    const readme = readFileSync("README.md", "utf8");
    writeFileSync(
      "README.md",
      readme.replace(/(<!-- bench:sync:start -->\n)[\s\S]*?(\n<!-- bench:sync:end -->)/, (_match, start: string, end: string) => `${start}${markdown}${end}`),
    );
    process.exitCode = checks.every(([, met]) => met) ? 0 : 1;
  } finally {
    simulator.child.kill("SIGTERM");
    await azurite.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
