import { defineFunctions } from "../../src/functions/definitions";
import { loadConfig, scheduleSettings } from "../../src/lib/config";
import { type ServiceOverrides, type Services, createServices } from "../../src/lib/services";
import { startFunctionHost } from "../../src/local/function-host";
import { requestCounter } from "./request-counter";

export interface TestApp {
  url: string;
  services: Services;
  storage: ReturnType<typeof requestCounter>;
  /** Every line the host and the functions logged. */
  logs: string[];
  call(method: string, path: string, init?: { body?: unknown; headers?: Record<string, string> }): Promise<TestResponse>;
  host: Awaited<ReturnType<typeof startFunctionHost>>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** The app as users reach it: the real definitions served over HTTP, storage in Azurite, requests counted. */
export async function startTestApp(overrides: ServiceOverrides = {}, env: NodeJS.ProcessEnv = process.env): Promise<TestApp> {
  const storage = requestCounter();
  const config = loadConfig(env);
  const logs: string[] = [];
  const services = createServices(config, { runLog: (line) => logs.push(line), ...overrides, tableOptions: { additionalPolicies: [storage.policy] } });
  const host = await startFunctionHost({
    definitions: defineFunctions(() => services),
    port: 0,
    log: (line) => logs.push(line),
    schedules: scheduleSettings(config),
    startTimers: false,
    queues: { connectionString: config.AzureWebJobsStorage!, pollIntervalMs: 200 },
  });
  return {
    url: host.url,
    host,
    services,
    storage,
    logs,
    async call(method, path, init = {}) {
      const response = await fetch(`${host.url}${path}`, {
        method,
        headers: { "content-type": "application/json", ...init.headers },
        ...(init.body !== undefined && { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) }),
      });
      const text = await response.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: response.status, headers: response.headers, text, json };
    },
    async close() {
      await host.close();
    },
  };
}
