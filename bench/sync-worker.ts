/**
 * One connector instance for bench/sync.ts: a process of its own, as a Function instance picking up a job, so
 * its CPU and peak memory are its own run's. Reads its target from BENCH_TARGET (JSON), signs in, prints `READY`,
 * runs the CUSTOMER mapping of BENCH_COMPANY when a line arrives on stdin, and prints `RESULT {json}`.
 */
import { PerformanceObserver, constants } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { type BenchTarget, benchServices } from "./bench-services";
import { operationCounter } from "./operation-counter";

/** What one worker's run cost it. */
export interface WorkerResult {
  failed: number;
  startedAt: number;
  endedAt: number;
  cpuMicros: number;
  /** The process's peak resident set (the kernel's high-water mark), startup included. */
  maxRssKiB: number;
  /** The most heap still in use right after a full garbage collection during the run: what the run holds. */
  liveHeapKiB: number;
  tableOperations: number;
}

async function main(): Promise<void> {
  const target = JSON.parse(process.env.BENCH_TARGET!) as BenchTarget;
  const company = process.env.BENCH_COMPANY!;
  const storage = operationCounter();
  const services = benchServices(target, storage.policy);
  // A new instance first discovers the tenant and signs in: done before READY, so the run measured is a warm one.
  const setup = (await services.setups.get(company))?.value;
  if (!setup) throw new Error(`${company} has no connection setup.`);
  await (await services.connector.client(setup)).whoAmI();
  const lines = createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve) => lines.once("line", () => resolve()));
  console.log("READY");
  await go;
  lines.close();
  storage.reset();
  // Read after each full collection (no collection is forced): the heap then holds only what is still referenced.
  let liveHeap = 0;
  const collections = new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)
        liveHeap = Math.max(liveHeap, process.memoryUsage().heapUsed);
  });
  collections.observe({ entryTypes: ["gc"] });
  const cpu = process.cpuUsage();
  const startedAt = Date.now();
  const result = await services.runner.runMapping(company, "CUSTOMER");
  const endedAt = Date.now();
  collections.disconnect();
  const used = process.cpuUsage(cpu);
  const report: WorkerResult = {
    failed: result.logs.reduce((sum, log) => sum + log.failed, 0),
    startedAt,
    endedAt,
    cpuMicros: used.user + used.system,
    maxRssKiB: process.resourceUsage().maxRSS,
    liveHeapKiB: Math.round(liveHeap / 1024),
    tableOperations: storage.count,
  };
  // Services keep connections open: the worker ends once its line is out.
  process.stdout.write(`RESULT ${JSON.stringify(report)}\n`, () => process.exit(0));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
