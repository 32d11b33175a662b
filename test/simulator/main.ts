import { mkdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { demoClientId, demoClientSecret, demoPassword } from "./fixture";
import { startDataverseSimulator } from "./simulator";

/** `npm run simulator`: the Dataverse + Entra ID simulator on its own, seeded with the demo organization. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: "string", default: "7443" }, latency: { type: "string", default: "0" } } });
  const simulator = await startDataverseSimulator({ port: Number(values.port), latencyMs: Number(values.latency) });
  mkdirSync(".local", { recursive: true });
  writeFileSync(".local/simulator-ca.pem", simulator.ca);
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
