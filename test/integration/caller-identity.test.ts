import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crmDataMessages } from "../../src/lib/connection/crm-data";
import { generateKeyPairSync, sign } from "node:crypto";
import { type DemoApp, setUpDemoCompany, startDemoApp } from "../support/demo-app";
import { demoClientId, demoPassword, xrmToolingSampleClientId } from "../simulator/fixture";
import { tokenRequest } from "../support/raw-dataverse";

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
    // A token of the v1 form (issuer https://sts.windows.net/<tenant>/, upn) is the tenant's too.
    expect((await read(bearer(demo.simulator.entra.signedAccessToken("jane@demo.example", audience, { version: "1.0" })))).status).toBe(200);
    // A forged App Service header means nothing here.
    const forged = await read({ "x-ms-client-principal-name": "admin@demo.example" });
    expect(forged.status).toBe(403);
    expect(forged.json.detail).toBe(crmDataMessages.signInRequired);
  });

  it("takes the token Entra ID issues for an app registered as the README says (v1, api://<client id>), and no forgery of it", async () => {
    // The app validates against the registration's identifier URI; the registration accepts v1 tokens (its default).
    const registered = await startDemoApp({ env: { CALLER_TOKEN_AUDIENCE: `api://${demoClientId}`, CALLER_TOKEN_TENANT_ID: demo.simulator.fixture.tenantId } });
    try {
      const company = await setUpDemoCompany(registered);
      await registered.app.call("POST", `/api/companies/${company}/connection/enable`, { body: { useDefaultSyncSetup: false } });
      expect((await registered.app.call("PATCH", `/api/companies/${company}/connection/settings`, { body: { usersMustMapToCrmUsers: true } })).status).toBe(
        200,
      );
      const read = (token: string) => registered.app.call("GET", `/api/companies/${company}/crm/salesorders?$select=name`, { headers: bearer(token) });
      // The ERP front end signs Jane in and asks for a token for this app's API.
      const issued = await tokenRequest(registered.simulator, {
        grant_type: "password",
        client_id: xrmToolingSampleClientId,
        username: "jane@demo.example",
        password: demoPassword,
        scope: `api://${demoClientId}/.default`,
      });
      expect(issued.status, issued.text).toBe(200);
      const token = issued.json.access_token as string;
      const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
      expect(claims).toMatchObject({ ver: "1.0", iss: `https://sts.windows.net/${registered.simulator.fixture.tenantId}/`, aud: `api://${demoClientId}` });
      const accepted = await read(token);
      expect(accepted.status, accepted.text).toBe(200);
      expect(accepted.json.actingAs).toEqual({ systemuserid: "a1b2c3d4-0006-4000-8000-000000000006" });

      const [header, payload] = token.split(".") as [string, string];
      const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
      const asAdmin = b64({ ...claims, upn: "admin@demo.example", unique_name: "admin@demo.example" });
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const signedBy = (key: typeof privateKey, body: string) =>
        `${header}.${body}.${sign("sha256", Buffer.from(`${header}.${body}`), key).toString("base64url")}`;
      for (const forged of [
        // Claims changed under the tenant's signature.
        `${header}.${asAdmin}.${token.split(".")[2]}`,
        // Signed with a key the tenant never published.
        signedBy(privateKey, asAdmin),
        // No signature at all.
        `${b64({ alg: "none", typ: "JWT" })}.${payload}.`,
        // Signed by the tenant, but the v1 issuer on a token that says it is v2.
        registered.simulator.entra.signedAccessToken("jane@demo.example", `api://${demoClientId}`, {
          version: "2.0",
          claims: { iss: `https://sts.windows.net/${registered.simulator.fixture.tenantId}/` },
        }),
      ]) {
        expect((await read(forged)).status).toBe(401);
      }
      // A token for Dataverse (another audience) is not a token for this app.
      const dataverse = await tokenRequest(registered.simulator, {
        grant_type: "password",
        client_id: xrmToolingSampleClientId,
        username: "jane@demo.example",
        password: demoPassword,
        scope: `${registered.simulator.url}/.default`,
      });
      expect((await read(dataverse.json.access_token)).status).toBe(401);
    } finally {
      await registered.close();
    }
  });
});
