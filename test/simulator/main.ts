import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { demoClientId, demoClientSecret, demoPassword } from "./fixture";
import { startDataverseSimulator } from "./simulator";

/** `npm run simulator`: the Dataverse + Entra ID simulator on its own, seeded with the demo organization. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "7443" },
      latency: { type: "string", default: "0" },
      // For benchmarks: requests take the server time they are charged, and stats can be read over HTTP.
      "spend-execution-time": { type: "boolean", default: false },
      control: { type: "boolean", default: false },
      "ca-file": { type: "string", default: ".local/simulator-ca.pem" },
    },
  });
  const simulator = await startDataverseSimulator({
    port: Number(values.port),
    latencyMs: Number(values.latency),
    spendExecutionTime: values["spend-execution-time"],
    controlEndpoints: values.control,
  });
  mkdirSync(dirname(values["ca-file"]), { recursive: true });
  writeFileSync(values["ca-file"], simulator.ca);
  if (values.control) console.log(`SIMULATOR ${JSON.stringify({ url: simulator.url, host: simulator.host, caFile: values["ca-file"] })}`);
  console.log(`Dataverse simulator: ${simulator.url} (organization and authority host)`);
  console.log(`  certificate: .local/simulator-ca.pem (trust it with NODE_EXTRA_CA_CERTS=.local/simulator-ca.pem)`);
  console.log(`  tenant: ${simulator.fixture.tenantId}`);
  console.log(`  users: integration@demo.example, admin@demo.example, disabled@..., unlicensed@..., noroles@..., jane@demo.example (password ${demoPassword})`);
  console.log(`  app: client id ${demoClientId}, secret ${demoClientSecret}`);
  const stop = () => simulator.close().finally(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
