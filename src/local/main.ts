import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type * as SimulatorModule from "../../test/simulator/simulator";
import { defineFunctions } from "../functions/definitions";
import { ConfigError, loadConfig, scheduleSettings } from "../lib/config";
import { createServices } from "../lib/services";
import { type RunningAzurite, startAzurite } from "./azurite";
import { startFunctionHost } from "./function-host";

/**
 * `npm start`: the local stand-in for `func start`. Starts Azurite (in memory, or --persist into
 * .azurite/), validates the settings, serves every HTTP function on :7071/api and fires the timers.
 */
async function main(): Promise<void> {
  const { values: options } = parseArgs({
    options: {
      port: { type: "string", default: process.env.PORT ?? "7071" },
      persist: { type: "boolean", default: false },
      simulator: { type: "boolean", default: false },
      "simulator-port": { type: "string", default: "7443" },
    },
  });
  loadLocalSettings("local.settings.json");

  let azurite: RunningAzurite | undefined;
  let simulator: { url: string; host: string; ca: string; close(): Promise<void> } | undefined;
  let services: ReturnType<typeof createServices> | undefined;
  const stopAll = async () => {
    services?.shutdown.abort(new Error("The local host is shutting down."));
    await host?.close();
    await simulator?.close();
    await azurite?.stop();
  };
  let host: Awaited<ReturnType<typeof startFunctionHost>> | undefined;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.log(`\n${signal}: stopping...`);
      stopAll().finally(() => process.exit(0));
    });
  }

  const storage = process.env.AzureWebJobsStorage;
  if (!process.env.AzureWebJobsStorage__tableServiceUri && (!storage || /UseDevelopmentStorage=true/i.test(storage))) {
    azurite = await startAzurite(options.persist ? { location: ".azurite" } : {});
    process.env.AzureWebJobsStorage = azurite.connectionString;
    console.log(`Azurite: tables on :${azurite.tablePort}, queues on :${azurite.queuePort} (${options.persist ? "persisted in .azurite/" : "in memory"})`);
  }

  if (options.simulator) {
    // Demo mode only: the simulator lives with the tests and is loaded only when asked for.
    const { startDataverseSimulator } = require("../../test/simulator/simulator") as typeof SimulatorModule;
    const started = await startDataverseSimulator({ port: Number(options["simulator-port"]) });
    simulator = started;
    const allowed = process.env.DATAVERSE_ALLOWED_HOSTS;
    process.env.DATAVERSE_ALLOWED_HOSTS = allowed ? `${allowed},${started.host}` : started.host;
    process.env.AUTHORITY_HOST = started.url;
    console.log(`Dataverse simulator: ${started.url} (demo organization; its certificate is trusted by this host only)`);
  }

  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      await stopAll();
      process.exit(1);
    }
    throw error;
  }
  services = createServices(config, simulator ? { trustedCa: simulator.ca } : {});
  const running = services;

  const schedules = scheduleSettings(config);
  const definitions = defineFunctions(() => running);
  host = await startFunctionHost({
    definitions,
    port: Number(options.port),
    schedules,
    ...(process.env.LOCAL_FUNCTION_KEY && { functionKey: process.env.LOCAL_FUNCTION_KEY }),
    ...(config.AzureWebJobsStorage && { queues: { connectionString: config.AzureWebJobsStorage } }),
  });
  const credentialStore = services.secrets.description;
  console.log(`Credential store: ${credentialStore.kind} (encrypted: ${credentialStore.encrypted})`);
  console.log("Functions:");
  for (const definition of definitions) {
    console.log(
      definition.trigger === "http"
        ? `  ${definition.name}: [${definition.methods.join(",")}] ${host.url}/api/${definition.route}`
        : definition.trigger === "timer"
          ? `  ${definition.name}: timer ${schedules[definition.scheduleSetting]} (${definition.scheduleSetting})`
          : `  ${definition.name}: queue ${definition.queueName}`,
    );
  }
  console.log(`Ready: ${host.url}/api/health (Ctrl-C to stop)`);
  if (simulator) console.log(demoWalkthrough(host.url, simulator.url));
}

function demoWalkthrough(api: string, organization: string): string {
  const company = `${api}/api/companies/demo/connection`;
  return [
    "",
    "Walkthrough against the demo organization:",
    `  curl -s -X PUT ${company} -H 'content-type: application/json' \\`,
    `    -d '{"serverAddress":"${organization}","authenticationType":"Office365","userName":"integration@demo.example","password":"Demo-Passw0rd!"}'`,
    `  curl -s -X POST ${company}/test`,
    `  curl -s -X POST ${company}/enable -H 'content-type: application/json' -d '{"useDefaultSyncSetup":true}'`,
    `  curl -s ${company}/status`,
  ].join("\n");
}

/** Like `func start`: local.settings.json Values become environment variables unless already set. */
function loadLocalSettings(path: string): void {
  if (!existsSync(path)) return;
  const parsed = JSON.parse(readFileSync(path, "utf8")) as { Values?: Record<string, string> };
  for (const [name, value] of Object.entries(parsed.Values ?? {})) {
    if (process.env[name] === undefined) process.env[name] = value;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
