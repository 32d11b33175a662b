import { startDataverseSimulator, type DataverseSimulator, type SimulatorOptions } from "../simulator/simulator";
import { demoPassword } from "../simulator/fixture";
import { uniqueCompany } from "./names";
import { type TestApp, startTestApp } from "./test-app";

export interface DemoApp {
  app: TestApp;
  simulator: DataverseSimulator;
  close(): Promise<void>;
}

/** The app over HTTP, wired to a fresh simulator exactly as `npm start -- --simulator` wires it. */
export async function startDemoApp(options: { simulator?: SimulatorOptions; env?: NodeJS.ProcessEnv } = {}): Promise<DemoApp> {
  const simulator = await startDataverseSimulator(options.simulator);
  const env = { ...process.env, DATAVERSE_ALLOWED_HOSTS: simulator.host, AUTHORITY_HOST: simulator.authorityHost, ...options.env };
  const app = await startTestApp({ trustedCa: simulator.ca }, env);
  return {
    app,
    simulator,
    async close() {
      await app.close();
      await simulator.close();
    },
  };
}

/** PUTs a setup for the demo integration user and returns the new company's slug. */
export async function setUpDemoCompany(demo: DemoApp, body: Record<string, unknown> = {}): Promise<string> {
  const company = uniqueCompany();
  const response = await demo.app.call("PUT", `/api/companies/${company}/connection`, {
    body: { serverAddress: demo.simulator.url, authenticationType: "Office365", userName: "integration@demo.example", password: demoPassword, ...body },
  });
  if (response.status !== 201) throw new Error(`setup failed: ${response.status} ${response.text}`);
  return company;
}
