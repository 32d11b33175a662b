import { request as httpRequest } from "node:http";
import { functionDefinitions } from "../../src/functions/definitions";
import { startFunctionHost } from "../../src/local/function-host";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { setupMessages } from "../../src/lib/setup/messages";
import { enabledConflict } from "../../src/lib/setup/setup-service";
import { uniqueCompany } from "../support/names";
import { type TestApp, startTestApp } from "../support/test-app";

const password = "Pa55-word;with'odd\"chars";
const clientSecret = "cl1ent~Secret.Value_42";
let app: TestApp;
const consoleLines: string[] = [];

beforeAll(async () => {
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void consoleLines.push(args.map(String).join(" ")));
  }
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
  vi.restoreAllMocks();
});

const path = (company: string) => `/api/companies/${company}/connection`;

async function rawSetupRow(company: string): Promise<Record<string, unknown> | undefined> {
  const table = await app.services.tables.table("connectionsetups");
  return table.getEntity(company, "setup").catch(() => undefined);
}

describe("PUT and GET /connection", () => {
  it("stores a setup with a password and never returns, stores in the row or logs the password", async () => {
    const company = uniqueCompany();
    const put = await app.call("PUT", path(company), {
      body: { serverAddress: "https://cronus.crm4.dynamics.com", userName: "integration@cronus.onmicrosoft.com", password },
    });
    expect(put.status).toBe(201);
    expect(put.headers.get("location")).toBe(path(company));
    expect(put.json).toMatchObject({ company, hasPassword: true, authenticationType: "Office365", isEnabled: false });

    const get = await app.call("GET", path(company));
    expect(get.status).toBe(200);
    expect(get.json).toMatchObject({
      serverAddress: "https://cronus.crm4.dynamics.com",
      userName: "integration@cronus.onmicrosoft.com",
      hasPassword: true,
      hasClientSecret: false,
      connectionString:
        "Url=https://cronus.crm4.dynamics.com; UserName=integration@cronus.onmicrosoft.com; Password={PASSWORD}; ProxyVersion=9; AuthType=Office365;",
      activeScheduledSyncJobs: { text: "0 of 0" },
      secretStore: { kind: "local", encrypted: true },
    });
    expect(get.headers.get("etag")).toBe(get.json.etag);

    const row = await rawSetupRow(company);
    expect(row).toMatchObject({ passwordSecretName: `crm-${company}-password` });
    for (const text of [put.text, get.text, JSON.stringify(row), app.logs.join("\n"), consoleLines.join("\n")]) {
      expect(text).not.toContain(password);
      expect(text).not.toContain("Pa55-word");
    }
    expect(await app.services.secrets.get({ name: String(row!.passwordSecretName), version: String(row!.passwordSecretVersion) })).toBe(password);
  });

  it("stores a URL with a path as scheme + host and says so in a notice", async () => {
    const company = uniqueCompany();
    const put = await app.call("PUT", path(company), { body: { serverAddress: "https://cronus.crm4.dynamics.com/main.aspx?appid=42" } });
    expect(put.status).toBe(201);
    expect(put.json.serverAddress).toBe("https://cronus.crm4.dynamics.com");
    expect(put.json.notices).toEqual([
      {
        code: "server-address-normalized",
        message: setupMessages.urlReplaced("https://cronus.crm4.dynamics.com/main.aspx?appid=42", "https://cronus.crm4.dynamics.com"),
      },
    ]);
    expect((await rawSetupRow(company))?.serverAddress).toBe("https://cronus.crm4.dynamics.com");
  });

  it.each([
    ["http URL", { serverAddress: "http://cronus.crm4.dynamics.com" }, "serverAddress", setupMessages.httpsOnly],
    ["garbage URL", { serverAddress: "this is not a url" }, "serverAddress", setupMessages.invalidUrl],
    ["missing URL", { userName: "a@b.com" }, "serverAddress", "is required (the Dynamics 365 for Sales URL)"],
    ["AD user without domain", { serverAddress: "https://crm.contoso.local", userName: "svc" }, "userName", setupMessages.userNameNeedsDomain],
    ["bad client id", { serverAddress: "https://o.crm.dynamics.com", clientId: "xyz" }, "clientId", "must be a GUID"],
    ["unknown field", { serverAddress: "https://o.crm.dynamics.com", pasword: "x" }, "pasword", "is not a known field"],
  ])("refuses a %s with problem+json naming the field, and stores nothing", async (_case, body, field, message) => {
    const company = uniqueCompany();
    const response = await app.call("PUT", path(company), { body });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.json).toMatchObject({ status: 400, title: "The request is not valid.", errors: [{ path: field, message }] });
    expect(await rawSetupRow(company)).toBeUndefined();
    expect((await app.call("GET", path(company))).status).toBe(404);
  });

  it("refuses a body that is not JSON and a company that is not a slug", async () => {
    const notJson = await app.call("PUT", path(uniqueCompany()), { body: "{serverAddress:" });
    expect(notJson.json).toMatchObject({ status: 400, errors: [{ path: "body", message: "must be valid JSON" }] });
    const badCompany = await app.call("PUT", path("Cronus_Inc"), { body: { serverAddress: "https://o.crm.dynamics.com" } });
    expect(badCompany.json).toMatchObject({ status: 400, errors: [{ path: "company" }] });
  });

  it("parses a supplied connection string and moves its secret to the secret store", async () => {
    const company = uniqueCompany();
    const put = await app.call("PUT", path(company), {
      body: {
        connectionString: `AuthType=ClientSecret;Url=https://cronus.crm.dynamics.com;ClientId=51f81489-12ee-4a9e-aaae-a2591f45987d;ClientSecret=${clientSecret};TenantId=cronus.onmicrosoft.com`,
      },
    });
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({
      authenticationType: "ClientSecret",
      clientId: "51f81489-12ee-4a9e-aaae-a2591f45987d",
      tenantId: "cronus.onmicrosoft.com",
      hasClientSecret: true,
      connectionString:
        "Url=https://cronus.crm.dynamics.com; ClientId=51f81489-12ee-4a9e-aaae-a2591f45987d; ClientSecret={CLIENTSECRET}; ProxyVersion=9; AuthType=ClientSecret; TenantId=cronus.onmicrosoft.com;",
    });
    expect(put.json.notices).toEqual([expect.objectContaining({ code: "secret-moved" })]);
    const row = await rawSetupRow(company);
    expect(JSON.stringify(row)).not.toContain(clientSecret);
    expect(put.text).not.toContain(clientSecret);
    expect(await app.services.secrets.get({ name: String(row!.clientSecretSecretName), version: String(row!.clientSecretSecretVersion) })).toBe(clientSecret);
  });

  it("keeps the stored secret when a replace omits it, and replaces it with a new version when given", async () => {
    const company = uniqueCompany();
    const body = { serverAddress: "https://o.crm.dynamics.com", userName: "a@o.com" };
    await app.call("PUT", path(company), { body: { ...body, password: "first" } });
    const first = await rawSetupRow(company);
    const kept = await app.call("PUT", path(company), { body });
    expect(kept.status).toBe(200);
    expect(kept.json.hasPassword).toBe(true);
    expect((await rawSetupRow(company))?.passwordSecretVersion).toBe(first?.passwordSecretVersion);

    await app.call("PUT", path(company), { body: { ...body, password: "second" } });
    const second = await rawSetupRow(company);
    expect(second?.passwordSecretVersion).not.toBe(first?.passwordSecretVersion);
    expect(await app.services.secrets.get({ name: String(second!.passwordSecretName), version: String(second!.passwordSecretVersion) })).toBe("second");
  });

  it("of 20 saves racing with one If-Match, one wins and the losers leave no secret version behind", async () => {
    const company = uniqueCompany();
    const created = await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com", userName: "a@o.com", password: "first" } });
    const etag = created.headers.get("etag")!;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        app.call("PUT", path(company), {
          body: { serverAddress: "https://o.crm.dynamics.com", userName: "a@o.com", password: `racer-${index}` },
          headers: { "if-match": etag },
        }),
      ),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, ...Array<number>(19).fill(412)]);
    const versions = [];
    for await (const row of (await app.services.tables.table("localsecrets")).listEntities({
      queryOptions: { filter: `PartitionKey eq 'crm-${company}-password'` },
    }))
      versions.push(row);
    expect(versions).toHaveLength(2); // the first save's and the winner's
  });

  it("answers 412 for a stale If-Match and 200 for the current one", async () => {
    const company = uniqueCompany();
    const created = await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com" } });
    const etag = created.headers.get("etag")!;
    const updated = await app.call("PUT", path(company), { body: { serverAddress: "https://p.crm.dynamics.com" }, headers: { "if-match": etag } });
    expect(updated.status).toBe(200);
    const stale = await app.call("PUT", path(company), { body: { serverAddress: "https://q.crm.dynamics.com" }, headers: { "if-match": etag } });
    expect(stale.status).toBe(412);
    expect(stale.headers.get("content-type")).toBe("application/problem+json");
    expect((await app.call("GET", path(company))).json.serverAddress).toBe("https://p.crm.dynamics.com");
    const createOnly = await app.call("PUT", path(company), { body: { serverAddress: "https://q.crm.dynamics.com" }, headers: { "if-none-match": "*" } });
    expect(createOnly.status).toBe(412);
  });

  it("answers 409 when the connection is enabled, for replace and delete", async () => {
    const company = uniqueCompany();
    await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com" } });
    const stored = (await app.services.setups.get(company))!;
    await app.services.setups.save({ ...stored.value, isEnabled: true }, stored.etag);

    const put = await app.call("PUT", path(company), { body: { serverAddress: "https://p.crm.dynamics.com" } });
    expect(put.status).toBe(409);
    expect(put.json.detail).toBe(enabledConflict);
    expect((await app.call("DELETE", path(company))).status).toBe(409);
  });

  it("turns users-must-map off when the authentication type changes", async () => {
    const company = uniqueCompany();
    await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com", userName: "a@o.com" } });
    const stored = (await app.services.setups.get(company))!;
    await app.services.setups.save({ ...stored.value, usersMustMapToCrmUsers: true }, stored.etag);
    const changed = await app.call("PUT", path(company), {
      body: { serverAddress: "https://o.crm.dynamics.com", authenticationType: "ClientSecret", clientId: "51f81489-12ee-4a9e-aaae-a2591f45987d" },
    });
    expect(changed.json.usersMustMapToCrmUsers).toBe(false);
    expect(changed.json.notices).toEqual([{ code: "users-must-map-switched-off", message: setupMessages.usersMustMapSwitchedOff }]);
  });
});

describe("DELETE /connection", () => {
  it("removes the setup and its secrets", async () => {
    const company = uniqueCompany();
    await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com", userName: "a@o.com", password } });
    const row = await rawSetupRow(company);
    const ref = { name: String(row!.passwordSecretName), version: String(row!.passwordSecretVersion) };
    expect((await app.call("DELETE", path(company))).status).toBe(204);
    expect((await app.call("GET", path(company))).status).toBe(404);
    await expect(app.services.secrets.get(ref)).rejects.toThrow(/not found/);
    expect((await app.call("DELETE", path(company))).status).toBe(404);
  });
});

describe("storage budget", () => {
  it("reads a setup in at most 2 storage round trips and saves one with one secret write plus one row write", async () => {
    const company = uniqueCompany();
    await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com", userName: "a@o.com", password: "pw" } });

    app.storage.reset();
    expect((await app.call("GET", path(company))).status).toBe(200);
    expect(app.storage.requests.length).toBeLessThanOrEqual(2);

    app.storage.reset();
    expect((await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com", userName: "a@o.com", password: "new" } })).status).toBe(
      200,
    );
    const writes = app.storage.requests.filter((request) => request.method !== "GET");
    expect(app.storage.to("localsecrets").filter((request) => request.method !== "GET")).toHaveLength(1);
    expect(app.storage.to("connectionsetups").filter((request) => request.method !== "GET")).toHaveLength(1);
    expect(writes).toHaveLength(2);

    app.storage.reset();
    await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com", userName: "b@o.com" } });
    expect(app.storage.requests.filter((request) => request.method !== "GET")).toHaveLength(1);
  });
});

describe("GET /health", () => {
  it("answers ok when storage answers, probing it with a data-plane read the app's roles allow", async () => {
    app.storage.reset();
    const response = await app.call("GET", "/api/health");
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ status: "ok", checks: { settings: "ok", storage: "ok" }, secretStore: { kind: "local", encrypted: true } });
    // Get Table Service Properties needs more than Storage Table Data Contributor: in Azure it would always fail.
    expect(app.storage.requests.filter((request) => /restype=service/.test(request.url))).toEqual([]);
    expect(app.storage.requests.some((request) => request.method === "GET" && /\/syncjobs\(\)/.test(new URL(request.url).pathname))).toBe(true);
  });

  it("answers 503 naming a bad setting and its rule", async () => {
    const previous = process.env.SYNC_BATCH_SIZE;
    process.env.SYNC_BATCH_SIZE = "lots";
    try {
      const response = await app.call("GET", "/api/health");
      expect(response.status).toBe(503);
      expect(response.json).toMatchObject({ status: "misconfigured", checks: { settings: expect.stringContaining("SYNC_BATCH_SIZE") } });
    } finally {
      if (previous === undefined) delete process.env.SYNC_BATCH_SIZE;
      else process.env.SYNC_BATCH_SIZE = previous;
    }
  });
});

describe("hostile input answers 4xx, never 500", () => {
  it.each(["__proto__", "constructor", "toString", "hasOwnProperty"])("GET /api/setup/%s is 404", async (name) => {
    expect((await app.call("GET", `/api/setup/${name}`)).status).toBe(404);
  });

  it("refuses a continuation token it did not give out with 400 naming it", async () => {
    const company = uniqueCompany();
    await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com", userName: "b@o.com" } });
    const response = await app.call("GET", `/api/companies/${company}/erp/customers?continuationToken=garbage`);
    expect(response.status).toBe(400);
    expect(response.json.errors).toEqual([{ path: "continuationToken", message: "is not a continuation token this API gave out" }]);
  });

  it("names the body when a rule is about the whole request", async () => {
    const company = uniqueCompany();
    await app.call("PUT", path(company), { body: { serverAddress: "https://o.crm.dynamics.com", userName: "b@o.com" } });
    await app.call("POST", `/api/companies/${company}/sync/default-setup`, { body: { confirm: true } });
    const response = await app.call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { body: {} });
    expect(response.status).toBe(400);
    expect(response.json.errors.every((error: { path: string }) => error.path !== "")).toBe(true);
  });
});

describe("the local host serves this machine only", () => {
  const raw = (method: string, path: string, headers: Record<string, string>, body?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const target = new URL(app.url);
      const request = httpRequest({ host: "127.0.0.1", port: target.port, method, path, headers }, (response) => {
        let text = "";
        response.on("data", (chunk) => (text += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, text }));
      });
      request.on("error", reject);
      if (body !== undefined) request.end(body);
      else request.end();
    });

  it("refuses a Host that is not this machine (DNS rebinding)", async () => {
    expect((await raw("GET", "/api/health", { host: "evil.example:7071" })).status).toBe(400);
    expect((await raw("GET", "/api/health", { host: `localhost:${new URL(app.url).port}` })).status).toBe(200);
  });

  it("refuses a write from a page of another origin, and a body that is not JSON", async () => {
    const company = uniqueCompany();
    const port = new URL(app.url).port;
    const fromPage = await raw(
      "POST",
      `/api/companies/${company}/connection/disable`,
      { host: `localhost:${port}`, origin: "https://evil.example", "content-type": "text/plain" },
      '{"reason":"x"}',
    );
    expect(fromPage.status).toBe(403);
    const textPlain = await raw(
      "PUT",
      `/api/companies/${company}/connection`,
      { host: `localhost:${port}`, "content-type": "text/plain" },
      JSON.stringify({ serverAddress: "https://o.crm.dynamics.com", userName: "a@o.com" }),
    );
    expect(textPlain.status).toBe(415);
    expect((await app.call("GET", path(company))).status).toBe(404);
  });

  it("asks for the function key when one is configured, as Azure does", async () => {
    const keyed = await startFunctionHost({
      definitions: functionDefinitions.filter((definition) => definition.trigger === "http"),
      port: 0,
      startTimers: false,
      functionKey: "local-key-123",
      log: () => {},
    });
    try {
      expect((await fetch(`${keyed.url}/api/health`)).status).toBe(200); // anonymous
      expect((await fetch(`${keyed.url}/api/companies/${uniqueCompany()}/connection`)).status).toBe(401);
      expect((await fetch(`${keyed.url}/api/companies/${uniqueCompany()}/connection`, { headers: { "x-functions-key": "local-key-123" } })).status).toBe(404);
      expect((await fetch(`${keyed.url}/api/companies/${uniqueCompany()}/connection?code=local-key-123`)).status).toBe(404);
    } finally {
      await keyed.close();
    }
  });
});
