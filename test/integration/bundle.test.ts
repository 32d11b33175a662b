import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { functionDefinitions } from "../../src/functions/definitions";
import type { FunctionDefinition } from "../../src/lib/http/function-definition";
import { startFunctionHost } from "../../src/local/function-host";
import { uniqueCompany } from "../support/names";

describe("the deployable bundle (npm run build)", () => {
  beforeAll(() => {
    execFileSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], { stdio: "pipe" });
  }, 120_000);

  it("registers the same functions and serves a setup round trip from dist/main.js", async () => {
    // test-env.ts already points AzureWebJobsStorage at this worker's storage account.
    process.env.LOCAL_SECRET_KEY ??= randomBytes(32).toString("base64");
    const bundle = require(`${process.cwd()}/dist/main.js`) as { functionDefinitions: FunctionDefinition[] };
    expect(bundle.functionDefinitions.map((definition) => definition.name)).toEqual(functionDefinitions.map((definition) => definition.name));

    const host = await startFunctionHost({
      definitions: bundle.functionDefinitions,
      port: 0,
      startTimers: false,
      queues: { connectionString: process.env.AzureWebJobsStorage!, pollIntervalMs: 60_000 },
      log: () => {},
    });
    try {
      expect((await fetch(`${host.url}/api/health`)).status).toBe(200);
      const company = uniqueCompany("bundle");
      const put = await fetch(`${host.url}/api/companies/${company}/connection`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ serverAddress: "org.crm4.dynamics.com", userName: "a@contoso.com", password: "secret-value" }),
      });
      expect(put.status).toBe(201);
      const view = (await (await fetch(`${host.url}/api/companies/${company}/connection`)).json()) as { serverAddress: string; hasPassword: boolean };
      expect(view).toMatchObject({ serverAddress: "https://org.crm4.dynamics.com", hasPassword: true });
      const openapi = (await (await fetch(`${host.url}/api/openapi.json`)).json()) as { openapi: string };
      expect(openapi.openapi).toBe("3.1.0");
    } finally {
      await host.close();
    }
  });
});
