import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { connectionMessages } from "../../src/lib/connection/messages";
import { crmDataMessages } from "../../src/lib/connection/crm-data";
import { activeJobMessages } from "../../src/lib/model/active-jobs";
import { syncSetupMessages } from "../../src/lib/sync/sync-setup-service";
import { demoClientId, demoClientSecret, demoPassword } from "../simulator/fixture";
import { type DemoApp, setUpDemoCompany, startDemoApp } from "../support/demo-app";
import { uniqueCompany } from "../support/names";

let demo: DemoApp;
const consoleLines: string[] = [];
beforeAll(async () => {
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void consoleLines.push(args.map(String).join(" ")));
  }
  demo = await startDemoApp({ env: { ERP_WEB_URL_DEFAULT: "https://erp.example.com" } });
  // As behind App Service authentication, which sets x-ms-client-principal from a validated sign-in.
  process.env.WEBSITE_AUTH_ENABLED = "True";
});
afterAll(async () => {
  delete process.env.WEBSITE_AUTH_ENABLED;
  await demo.close();
  vi.restoreAllMocks();
});

const connection = (company: string, action = "") => `/api/companies/${company}/connection${action}`;
const principal = (email: string) => ({
  "x-ms-client-principal": Buffer.from(JSON.stringify({ identityProvider: "aad", userDetails: email, claims: [] })).toString("base64"),
});

describe("POST /connection/test", () => {
  it("succeeds against the demo organization with the details and the encryption prompt", async () => {
    const company = await setUpDemoCompany(demo);
    const response = await demo.app.call("POST", connection(company, "/test"));
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({
      ok: true,
      message: connectionMessages.testSucceeded,
      details: {
        crmVersion: "9.2.24083.00212",
        userId: "a1b2c3d4-0001-4000-8000-000000000001",
        organizationId: demo.simulator.fixture.organization.organizationid,
      },
      warnings: [],
      prompts: [{ id: "enable-encryption", message: connectionMessages.secretsNotInKeyVault, action: { method: "PUT", href: connection(company) } }],
    });
    const status = await demo.app.call("GET", connection(company, "/status"));
    expect(status.json.lastTest).toMatchObject({ ok: true, message: connectionMessages.testSucceeded });
  });

  it("names the missing fields before trying to connect", async () => {
    const company = uniqueCompany();
    await demo.app.call("PUT", connection(company), {
      body: { serverAddress: demo.simulator.url, authenticationType: "Office365", userName: "integration@demo.example" },
    });
    const response = await demo.app.call("POST", connection(company, "/test"));
    expect(response.json).toMatchObject({
      ok: false,
      message: connectionMessages.testFailed(connectionMessages.userCredentialsRequired),
      error: { step: "settings", reason: connectionMessages.userCredentialsRequired },
    });
    const app = uniqueCompany();
    await demo.app.call("PUT", connection(app), { body: { serverAddress: demo.simulator.url, authenticationType: "ClientSecret", clientId: demoClientId } });
    expect((await demo.app.call("POST", connection(app, "/test"))).json.error.reason).toBe(connectionMessages.applicationCredentialsRequired);
  });

  it("reports a wrong password as a sign-in failure with Entra ID's reason", async () => {
    const company = await setUpDemoCompany(demo, { password: "Wrong-Passw0rd!" });
    const response = await demo.app.call("POST", connection(company, "/test"));
    expect(response.json).toMatchObject({ ok: false, error: { step: "sign-in" } });
    expect(response.json.message).toBe(
      connectionMessages.testFailed("Sign-in failed: AADSTS50126: Error validating credentials due to invalid username or password."),
    );
    expect(response.text).not.toContain("Wrong-Passw0rd!");
  });

  it.each([
    ["mfa@demo.example", "AADSTS50076", "multi-factor authentication"],
    ["blocked@demo.example", "AADSTS53003", "Conditional Access"],
    ["federated@demo.example", "AADSTS50158", "identity provider requires an extra challenge"],
  ])("explains a sign-in that needs interaction (%s, %s) and what to do instead", async (userName, code, advice) => {
    const company = await setUpDemoCompany(demo, { userName });
    const response = await demo.app.call("POST", connection(company, "/test"));
    expect(response.json).toMatchObject({ ok: false, error: { step: "sign-in" } });
    expect(response.json.message).toContain(`Sign-in failed: ${code}: `);
    expect(response.json.message).toContain(advice);
    expect(response.json.message).toContain("application user (AuthType=ClientSecret or Certificate)");
  });

  it("says when the connection user signs in but is not a user of the environment", async () => {
    const company = await setUpDemoCompany(demo, { userName: "outsider@demo.example" });
    const response = await demo.app.call("POST", connection(company, "/test"));
    expect(response.json).toMatchObject({ ok: false, error: { step: "permission" } });
    expect(response.json.message).toBe(connectionMessages.testFailed(connectionMessages.userNotInOrganization("outsider@demo.example")));
  });

  it("refuses a disallowed host without any outbound connection", async () => {
    const company = uniqueCompany();
    await demo.app.call("PUT", connection(company), {
      body: { serverAddress: "https://localhost:1", authenticationType: "Office365", userName: "integration@demo.example", password: demoPassword },
    });
    demo.simulator.resetStats();
    const response = await demo.app.call("POST", connection(company, "/test"));
    expect(response.json).toMatchObject({ ok: false, error: { step: "outbound-guard" } });
    expect(response.json.message).toMatch(/localhost:1 is not a Dynamics 365 online host/);
    expect(demo.simulator.stats.connections).toBe(0);
  });

  it.each([
    ["disabled@demo.example", connectionMessages.connectionUserDisabled("disabled@demo.example")],
    ["unlicensed@demo.example", connectionMessages.connectionUserUnlicensed("unlicensed@demo.example")],
    ["noroles@demo.example", connectionMessages.connectionUserHasNoRoles("noroles@demo.example")],
  ])("checks the connection user %s", async (userName, reason) => {
    const company = await setUpDemoCompany(demo, { userName });
    const response = await demo.app.call("POST", connection(company, "/test"));
    expect(response.json).toMatchObject({ ok: false, message: connectionMessages.testFailed(reason), error: { step: "permission", reason } });
  });

  it("warns when the connection user is a System Administrator", async () => {
    const company = await setUpDemoCompany(demo, { userName: "admin@demo.example" });
    const response = await demo.app.call("POST", connection(company, "/test"));
    expect(response.json).toMatchObject({ ok: true, warnings: [connectionMessages.connectionUserIsAdministrator("admin@demo.example")] });
  });

  it("signs in with a client secret", async () => {
    const company = uniqueCompany();
    await demo.app.call("PUT", connection(company), {
      body: {
        serverAddress: demo.simulator.url,
        authenticationType: "ClientSecret",
        clientId: demoClientId,
        clientSecret: demoClientSecret,
        tenantId: demo.simulator.fixture.tenantId,
      },
    });
    expect((await demo.app.call("POST", connection(company, "/test"))).json).toMatchObject({
      ok: true,
      details: { userId: "a1b2c3d4-0007-4000-8000-000000000007" },
    });
  });

  it("says so when users must map and the calling ERP user has no CRM user", async () => {
    const company = await setUpDemoCompany(demo);
    await demo.app.call("PATCH", connection(company, "/settings"), { body: { usersMustMapToCrmUsers: true } });
    const unmapped = await demo.app.call("POST", connection(company, "/test"), { headers: principal("stranger@contoso.com") });
    expect(unmapped.json.message).toBe(`${connectionMessages.testSucceeded} ${connectionMessages.usersMustMapUnmapped("stranger@contoso.com")}`);
    const mapped = await demo.app.call("POST", connection(company, "/test"), { headers: principal("jane@demo.example") });
    expect(mapped.json.message).toBe(connectionMessages.testSucceeded);
  });
});

describe("enable and disable", () => {
  it("enables, reads the CRM facts, asks about the default sync setup and accepts the answer", async () => {
    const company = await setUpDemoCompany(demo);
    const enabled = await demo.app.call("POST", connection(company, "/enable"), { body: {} });
    expect(enabled.status).toBe(200);
    expect(enabled.json).toMatchObject({
      isEnabled: true,
      disableReason: null,
      crmVersion: "9.2.24083.00212",
      crmVersionSupported: true,
      integrationSolutionImported: true,
      salesOrderIntegrationEnabled: false,
      crmBaseCurrencyCode: "USD",
      activeScheduledSyncJobs: { text: "0 of 0", message: activeJobMessages.noJobs },
    });
    const question = enabled.json.prompts.find((prompt: { id: string }) => prompt.id === "default-sync-setup");
    expect(question).toEqual({
      id: "default-sync-setup",
      message: connectionMessages.defaultSyncSetupQuestion,
      action: { method: "POST", href: `/api/companies/${company}/sync/default-setup`, body: { confirm: true } },
    });
    expect(enabled.json.prompts.map((prompt: { id: string }) => prompt.id)).toContain("enable-encryption");

    const answer = await demo.app.call(question.action.method, question.action.href, { body: question.action.body });
    expect(answer.json).toMatchObject({ message: syncSetupMessages.completed, mappings: 11, activeScheduledSyncJobs: { text: "11 of 12" } });
    const view = await demo.app.call("GET", connection(company));
    expect(view.json.activeScheduledSyncJobs).toEqual({ ready: 11, total: 12, text: "11 of 12", message: activeJobMessages.partlyReady(11, 12) });
  });

  it("installs the default sync setup when asked to in the enable call", async () => {
    const company = await setUpDemoCompany(demo);
    const enabled = await demo.app.call("POST", connection(company, "/enable"), { body: { useDefaultSyncSetup: true } });
    expect(enabled.json.activeScheduledSyncJobs.text).toBe("11 of 12");
    expect(enabled.json.prompts.map((prompt: { id: string }) => prompt.id)).toEqual(["enable-encryption"]);
  });

  it("stays disabled and answers 422 with the reason when the test fails", async () => {
    const company = await setUpDemoCompany(demo, { password: "Wrong-Passw0rd!" });
    const response = await demo.app.call("POST", connection(company, "/enable"), { body: {} });
    expect(response.status).toBe(422);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.json.detail).toMatch(/^The connection setup cannot be validated\./);
    expect(response.json.test).toMatchObject({ ok: false, error: { step: "sign-in" } });
    expect((await demo.app.call("GET", connection(company))).json.isEnabled).toBe(false);
  });

  it("refuses to enable when the ERP's local currency differs from the CRM base currency", async () => {
    const other = await startDemoApp({ env: { ERP_LOCAL_CURRENCY: "EUR" } });
    try {
      const company = await setUpDemoCompany(other);
      const response = await other.app.call("POST", connection(company, "/enable"), { body: {} });
      expect(response.status).toBe(422);
      expect(response.json.detail).toBe(connectionMessages.lcyMismatch("EUR", "USD"));
      expect((await other.app.call("GET", connection(company))).json.isEnabled).toBe(false);
    } finally {
      await other.close();
    }
  });

  it("makes the setup read-only while enabled (409) and disables with a reason, jobs On Hold", async () => {
    const company = await setUpDemoCompany(demo);
    await demo.app.call("POST", connection(company, "/enable"), { body: { useDefaultSyncSetup: true } });
    const put = await demo.app.call("PUT", connection(company), { body: { serverAddress: demo.simulator.url } });
    expect(put.status).toBe(409);

    const disabled = await demo.app.call("POST", connection(company, "/disable"), { body: { reason: "Maintenance window" } });
    expect(disabled.json).toMatchObject({
      isEnabled: false,
      disableReason: "Maintenance window",
      crmVersion: null,
      integrationSolutionImported: false,
      salesOrderIntegrationEnabled: false,
      crmBaseCurrencyCode: null,
      activeScheduledSyncJobs: { text: "0 of 0" },
    });
    const jobs = await demo.app.services.sync.jobSummaries(company);
    expect(new Set(jobs.map((job) => job.status))).toEqual(new Set(["On Hold"]));
    expect((await demo.app.call("POST", connection(company, "/disable"), { body: {} })).json.disableReason).toBe("Maintenance window");

    const again = await demo.app.call("POST", connection(company, "/enable"), { body: {} });
    expect(again.json).toMatchObject({ isEnabled: true, disableReason: null, activeScheduledSyncJobs: { text: "11 of 12" } });
    expect(again.json.prompts.map((prompt: { id: string }) => prompt.id)).toEqual(["enable-encryption"]);
  });

  it("flags an unsupported CRM version but still enables", async () => {
    demo.simulator.fixture.organization.version = "7.1.0.0";
    try {
      const company = await setUpDemoCompany(demo);
      const enabled = await demo.app.call("POST", connection(company, "/enable"), { body: { useDefaultSyncSetup: false } });
      expect(enabled.json).toMatchObject({ isEnabled: true, crmVersion: "7.1.0.0", crmVersionSupported: false });
      expect(enabled.json.notices).toContainEqual({ code: "unsupported-crm-version", message: connectionMessages.unsupportedVersion("7.1.0.0") });
    } finally {
      demo.simulator.fixture.organization.version = "9.2.24083.00212";
    }
  });

  it("asks before replacing an existing sync setup", async () => {
    const company = await setUpDemoCompany(demo);
    await demo.app.call("POST", `/api/companies/${company}/sync/default-setup`, { body: {} });
    const again = await demo.app.call("POST", `/api/companies/${company}/sync/default-setup`, { body: {} });
    expect(again.status).toBe(409);
    expect(again.json.detail).toBe(syncSetupMessages.confirmReplace);
    expect((await demo.app.call("POST", `/api/companies/${company}/sync/default-setup`, { body: { confirm: true } })).status).toBe(200);
  });
});

describe("advanced settings", () => {
  async function enabledCompany(): Promise<string> {
    const company = await setUpDemoCompany(demo);
    await demo.app.call("POST", connection(company, "/enable"), { body: { useDefaultSyncSetup: false } });
    return company;
  }

  it("marks the connection user as integration user in CRM", async () => {
    const company = await enabledCompany();
    const response = await demo.app.call("PATCH", connection(company, "/settings"), { body: { connectionUserIsIntegrationUser: true } });
    expect(response.json).toMatchObject({
      connectionUserIsIntegrationUser: true,
      notices: [{ message: connectionMessages.integrationUserSet("integration@demo.example") }],
    });
    expect(demo.simulator.store.get("systemusers", "a1b2c3d4-0001-4000-8000-000000000001")?.isintegrationuser).toBe(true);
    await demo.app.call("PATCH", connection(company, "/settings"), { body: { connectionUserIsIntegrationUser: false } });
    expect(demo.simulator.store.get("systemusers", "a1b2c3d4-0001-4000-8000-000000000001")?.isintegrationuser).toBe(false);
  });

  it("switches sales order integration in CRM, and refuses to switch it off while an order is Submitted", async () => {
    const company = await enabledCompany();
    const on = await demo.app.call("PATCH", connection(company, "/settings"), { body: { salesOrderIntegrationEnabled: true } });
    expect(on.json).toMatchObject({ salesOrderIntegrationEnabled: true, notices: [{ message: connectionMessages.salesOrderIntegrationEnabled }] });
    expect(demo.simulator.store.get("organizations", demo.simulator.fixture.organization.organizationid)?.issopintegrationenabled).toBe(true);

    const order = demo.simulator.store.seed("salesorders", { name: "Submitted order", statecode: 1, statuscode: 3 });
    const blocked = await demo.app.call("PATCH", connection(company, "/settings"), { body: { salesOrderIntegrationEnabled: false } });
    expect(blocked.status).toBe(409);
    expect(blocked.json.detail).toBe(connectionMessages.submittedOrderBlocksDisable);
    demo.simulator.store.delete("salesorders", String(order.salesorderid));

    const off = await demo.app.call("PATCH", connection(company, "/settings"), { body: { salesOrderIntegrationEnabled: false } });
    expect(off.json).toMatchObject({ salesOrderIntegrationEnabled: false, notices: [{ message: connectionMessages.salesOrderIntegrationDisabled }] });
    expect(demo.simulator.store.get("organizations", demo.simulator.fixture.organization.organizationid)?.issopintegrationenabled).toBe(false);
  });

  it("needs an enabled connection for settings that live in CRM", async () => {
    const company = await setUpDemoCompany(demo);
    const response = await demo.app.call("PATCH", connection(company, "/settings"), { body: { salesOrderIntegrationEnabled: true } });
    expect(response.status).toBe(409);
    expect(response.json.detail).toBe(connectionMessages.notEnabled);
  });

  it("writes the ERP web URL to CRM and resets it to the default", async () => {
    const company = await enabledCompany();
    const changed = await demo.app.call("PATCH", connection(company, "/settings"), { body: { erpWebUrl: "https://erp.contoso.com/bc" } });
    expect(changed.json.erpWebUrl).toBe("https://erp.contoso.com/bc");
    const row = () => demo.simulator.store.rows("nav_connections").find((candidate) => candidate.nav_name === company);
    expect(row()?.nav_dynamicsnavurl).toBe("https://erp.contoso.com/bc");

    const reset = await demo.app.call("POST", connection(company, "/settings/reset-erp-web-url"));
    expect(reset.json).toMatchObject({ erpWebUrl: "https://erp.example.com", message: connectionMessages.erpWebUrlReset });
    expect(row()?.nav_dynamicsnavurl).toBe("https://erp.example.com");
  });

  it("refuses bad settings with problem+json", async () => {
    const company = await setUpDemoCompany(demo);
    const response = await demo.app.call("PATCH", connection(company, "/settings"), { body: { erpWebUrl: "ftp://x", salesOrderIntegrationEnabled: "yes" } });
    expect(response.status).toBe(400);
    expect(response.json.errors.map((error: { path: string }) => error.path).sort()).toEqual(["erpWebUrl", "salesOrderIntegrationEnabled"]);
  });
});

describe("GET /crm/{entitySet} on behalf of the caller", () => {
  it("answers 400 naming $filter when Dynamics 365 refuses the query (not 500)", async () => {
    const company = await setUpDemoCompany(demo);
    await demo.app.call("POST", connection(company, "/enable"), { body: { useDefaultSyncSetup: false } });
    for (const filter of ["name eq", "nosuchcolumn eq 'x'"]) {
      const response = await demo.app.call("GET", `/api/companies/${company}/crm/accounts?$filter=${encodeURIComponent(filter)}`);
      expect(response.status, filter).toBe(400);
      expect(response.json.errors[0].path).toBe("$filter");
    }
  });

  it("reads as the connection user, or impersonates the mapped CRM user, or answers 403", async () => {
    const company = await setUpDemoCompany(demo);
    await demo.app.call("POST", connection(company, "/enable"), { body: { useDefaultSyncSetup: false } });
    const asConnectionUser = await demo.app.call("GET", `/api/companies/${company}/crm/salesorders?$select=name&$top=5`);
    expect(asConnectionUser.json).toMatchObject({
      actingAs: "connection-user",
      value: expect.arrayContaining([expect.objectContaining({ name: "Order 1001" })]),
    });

    await demo.app.call("PATCH", connection(company, "/settings"), { body: { usersMustMapToCrmUsers: true } });
    const mapped = await demo.app.call("GET", `/api/companies/${company}/crm/salesorders?$select=name`, { headers: principal("jane@demo.example") });
    expect(mapped.json.actingAs).toEqual({ systemuserid: "a1b2c3d4-0006-4000-8000-000000000006" });
    const unmapped = await demo.app.call("GET", `/api/companies/${company}/crm/salesorders`, { headers: principal("stranger@contoso.com") });
    expect(unmapped.status).toBe(403);
    expect(unmapped.json.detail).toBe(crmDataMessages.unmapped("stranger@contoso.com"));
    const anonymous = await demo.app.call("GET", `/api/companies/${company}/crm/salesorders`);
    expect(anonymous.status).toBe(403);
    expect((await demo.app.call("GET", `/api/companies/${company}/crm/secrets`)).status).toBe(404);
  });
});

describe("secrets during the lifecycle", () => {
  it("never logs a password", () => {
    const everything = [...demo.app.logs, ...consoleLines].join("\n");
    expect(everything).not.toContain(demoPassword);
    expect(everything).not.toContain("Wrong-Passw0rd!");
    expect(everything).not.toContain(demoClientSecret);
  });
});

describe("who calls, without App Service authentication", () => {
  it("ignores a forged x-ms-client-principal and refuses to require user mapping", async () => {
    const company = await setUpDemoCompany(demo);
    await demo.app.call("POST", connection(company, "/enable"), { body: { useDefaultSyncSetup: false } });
    await demo.app.call("PATCH", connection(company, "/settings"), { body: { usersMustMapToCrmUsers: true } });
    delete process.env.WEBSITE_AUTH_ENABLED;
    try {
      // Anyone with a function key could otherwise act as the administrator.
      const forged = await demo.app.call("GET", `/api/companies/${company}/crm/salesorders?$select=name`, { headers: principal("admin@demo.example") });
      expect(forged.status).toBe(403);
      expect(forged.json.detail).toBe(crmDataMessages.signInRequired);
      const other = await setUpDemoCompany(demo);
      await demo.app.call("POST", connection(other, "/enable"), { body: { useDefaultSyncSetup: false } });
      const refused = await demo.app.call("PATCH", connection(other, "/settings"), { body: { usersMustMapToCrmUsers: true } });
      expect(refused.status).toBe(400);
      expect(refused.json.errors).toEqual([{ path: "usersMustMapToCrmUsers", message: connectionMessages.usersMustMapNeedsAuthentication }]);
    } finally {
      process.env.WEBSITE_AUTH_ENABLED = "True";
    }
  });
});

describe("connection strings as XRM tooling writes them, and enabling again", () => {
  it("takes Microsoft's sample OAuth string with an app:// redirect URI, and AD's Domain= with a bare user name", async () => {
    const sample = await demo.app.call("PUT", connection(`xrm-${Date.now().toString(36)}`), {
      body: {
        connectionString:
          "AuthType=OAuth; Username=jsmith@contoso.onmicrosoft.com; Password=passcode; Url=https://contosotest.crm.dynamics.com; AppId=51f81489-12ee-4a9e-aaae-a2591f45987d; RedirectUri=app://58145B91-0C36-4500-8554-080854F2AC97; LoginPrompt=Auto",
      },
    });
    expect(sample.status, sample.text).toBe(201);
    expect(sample.json).toMatchObject({ authenticationType: "OAuth", redirectUri: "app://58145B91-0C36-4500-8554-080854F2AC97" });
    const ad = await demo.app.call("PUT", connection(`ad-${Date.now().toString(36)}`), {
      body: { connectionString: "AuthType=AD; Url=https://crm.contoso.local; Domain=CONTOSO; Username=integration; Password=secret-value" },
    });
    expect(ad.status, ad.text).toBe(201);
    expect(ad.json).toMatchObject({ authenticationType: "AD", userName: "CONTOSO\\integration", domain: "CONTOSO" });
    expect(ad.text).not.toContain("secret-value");
  });

  it("says so when enable is asked for the default sync setup while one exists", async () => {
    const company = await setUpDemoCompany(demo);
    await demo.app.call("POST", connection(company, "/enable"), { body: { useDefaultSyncSetup: true } });
    await demo.app.call("POST", connection(company, "/disable"), { body: { reason: "x" } });
    const again = await demo.app.call("POST", connection(company, "/enable"), { body: { useDefaultSyncSetup: true } });
    expect(again.status).toBe(200);
    expect(again.json.notices).toEqual(expect.arrayContaining([{ code: "sync-setup-kept", message: connectionMessages.syncSetupKept }]));
    expect(again.json.prompts).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: "default-sync-setup", message: connectionMessages.replaceSyncSetupQuestion })]),
    );
  });
});
