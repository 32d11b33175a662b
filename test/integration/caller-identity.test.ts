import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crmDataMessages } from "../../src/lib/connection/crm-data";
import { type DemoApp, setUpDemoCompany, startDemoApp } from "../support/demo-app";

// Without App Service authentication, the app validates ERP users' own Entra ID access tokens (jose).
let demo: DemoApp;
const audience = "api://d365-sales-connector";
beforeAll(async () => {
  delete process.env.WEBSITE_AUTH_ENABLED;
  demo = await startDemoApp({ env: { CALLER_TOKEN_AUDIENCE: audience, CALLER_TOKEN_TENANT_ID: "8f3c9d2e-5b4a-4c1d-9e8f-7a6b5c4d3e2f" } });
});
afterAll(() => demo.close());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("ERP users identified by their Entra ID access token", () => {
  it("reads as the CRM user of a valid token, and refuses tokens of another audience, tenant, key or time with 401", async () => {
    const company = await setUpDemoCompany(demo);
    await demo.app.call("POST", `/api/companies/${company}/connection/enable`, { body: { useDefaultSyncSetup: false } });
    expect((await demo.app.call("PATCH", `/api/companies/${company}/connection/settings`, { body: { usersMustMapToCrmUsers: true } })).status).toBe(200);
    const read = (headers: Record<string, string>) => demo.app.call("GET", `/api/companies/${company}/crm/salesorders?$select=name`, { headers });

    const valid = await read(bearer(demo.simulator.entra.signedAccessToken("jane@demo.example", audience)));
    expect(valid.status).toBe(200);
    expect(valid.json.actingAs).toEqual({ systemuserid: "a1b2c3d4-0006-4000-8000-000000000006" });

    for (const token of [
      demo.simulator.entra.signedAccessToken("jane@demo.example", "api://someone-else"),
      demo.simulator.entra.signedAccessToken("jane@demo.example", audience, { expiresInSeconds: -600 }),
      demo.simulator.entra.signedAccessToken("jane@demo.example", audience, { issuerTenant: "00000000-0000-4000-8000-000000000000" }),
      `${demo.simulator.entra.signedAccessToken("jane@demo.example", audience).slice(0, -6)}AAAAAA`,
    ]) {
      expect((await read(bearer(token))).status).toBe(401);
    }
    // A forged App Service header means nothing here.
    const forged = await read({ "x-ms-client-principal-name": "admin@demo.example" });
    expect(forged.status).toBe(403);
    expect(forged.json.detail).toBe(crmDataMessages.signInRequired);
  });
});
