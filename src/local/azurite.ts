import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";

export interface RunningAzurite {
  /** Connection string with the real ports (devstoreaccount1, the documented Azurite account). */
  connectionString: string;
  /** The connection string of another account declared at start (`accounts`), as a second storage account. */
  connectionStringFor(account: string): string;
  tablePort: number;
  queuePort: number;
  blobPort: number;
  /** The Azurite process (the benchmark reads its CPU time). */
  pid: number;
  stop(): Promise<void>;
}

const devAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/**
 * Starts Azurite from the npm dependency as a child process (blob, queue and table services on free
 * ports). In memory unless `location` is given. Resolves once every service listens.
 */
export async function startAzurite(options: { location?: string; timeoutMs?: number; accounts?: string[] } = {}): Promise<RunningAzurite> {
  const entry = require.resolve("azurite/dist/src/azurite.js");
  const args = [entry, "--blobPort", "0", "--queuePort", "0", "--tablePort", "0", "--skipApiVersionCheck", "--disableTelemetry", "--loose"];
  if (options.location) {
    mkdirSync(options.location, { recursive: true });
    args.push("--location", options.location);
  } else {
    args.push("--inMemoryPersistence");
  }
  // Extra accounts are separate storage accounts on one Azurite: tables and queues of one are invisible to the others.
  const accounts = ["devstoreaccount1", ...(options.accounts ?? [])];
  const env = options.accounts ? { ...process.env, AZURITE_ACCOUNTS: accounts.map((name) => `${name}:${devAccountKey}`).join(";") } : process.env;
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env });
  const stopChild = () => stop(child);
  process.once("exit", () => child.kill("SIGKILL"));

  const ports = await new Promise<Record<string, number>>((resolve, reject) => {
    const found: Record<string, number> = {};
    const timer = setTimeout(() => reject(new Error("Azurite did not start within the time limit")), options.timeoutMs ?? 20_000);
    const output: string[] = [];
    const onLine = (line: string) => {
      output.push(line);
      const match = line.match(/Azurite (Blob|Queue|Table) service is successfully listening at https?:\/\/[^:]+:(\d+)/);
      if (match) found[match[1]!.toLowerCase()] = Number(match[2]);
      if (found.blob && found.queue && found.table) {
        clearTimeout(timer);
        resolve(found);
      }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited (code ${code}) before it was ready:\n${output.join("\n")}`));
    });
  }).catch(async (error: unknown) => {
    await stopChild();
    throw error;
  });

  const host = "http://127.0.0.1";
  const connectionStringFor = (account: string) => {
    if (!accounts.includes(account)) throw new Error(`Azurite was not started with the account "${account}".`);
    return (
      `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${devAccountKey};` +
      `BlobEndpoint=${host}:${ports.blob}/${account};QueueEndpoint=${host}:${ports.queue}/${account};` +
      `TableEndpoint=${host}:${ports.table}/${account};`
    );
  };
  return {
    connectionString: connectionStringFor("devstoreaccount1"),
    connectionStringFor,
    tablePort: ports.table!,
    queuePort: ports.queue!,
    blobPort: ports.blob!,
    pid: child.pid!,
    stop: stopChild,
  };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 3000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
