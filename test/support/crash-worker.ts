// A second instance of the app for crash tests: runs one job entry or a full synchronization against the test's
// Azurite and simulator, in a process of its own that the test can kill -9 midway.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadConfig } from "../../src/lib/config";
import { createServices } from "../../src/lib/services";

async function main(): Promise<void> {
  const [mode, company, job] = process.argv.slice(2);
  const services = createServices(loadConfig(), { trustedCa: readFileSync(process.env.CRASH_WORKER_CA_FILE!, "utf8") });
  if (mode === "job") await services.jobs.runJob(company!, job!, randomUUID(), true);
  else await services.jobs.runFull(company!, randomUUID());
  process.stdout.write("finished\n");
}

void main();
