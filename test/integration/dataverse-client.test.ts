import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataverseRequestError, describeFailure, failureStep } from "../../src/lib/dataverse/dataverse-errors";
import { HttpsTransport } from "../../src/lib/dataverse/https-transport";
import { OutboundGuard } from "../../src/lib/dataverse/outbound-guard";
import { SignInError } from "../../src/lib/dataverse/token-provider";
import { clientCertificatePem } from "../support/certificates";
import { integrationUser, simulatorClient, simulatorTokens, simulatorTransport } from "../support/dataverse";
import { demoClientId, demoClientSecret } from "../simulator/fixture";
import { demoUsers, webApiAs } from "../support/raw-dataverse";
import { type DataverseSimulator, startDataverseSimulator } from "../simulator/simulator";

let simulator: DataverseSimulator;
beforeAll(async () => {
  simulator = await startDataverseSimulator();
});
afterAll(() => simulator.close());

describe("tokens with MSAL Node against the simulator's Entra ID", () => {
  it("signs in with user name and password, discovering the tenant from the 401 challenge", async () => {
    const client = simulatorClient(simulator);
    expect(await client.whoAmI()).toMatchObject({
      UserId: "a1b2c3d4-0001-4000-8000-000000000001",
      OrganizationId: simulator.fixture.organization.organizationid,
    });
  });

  it("signs in with a client secret", async () => {
    const client = simulatorClient(simulator, {
      credentials: {
        authenticationType: "ClientSecret",
        serverAddress: simulator.url,
        clientId: demoClientId,
        clientSecret: demoClientSecret,
        tenantId: simulator.fixture.tenantId,
      },
    });
    expect((await client.whoAmI()).UserId).toBe("a1b2c3d4-0007-4000-8000-000000000007");
  });

  it("signs in with a certificate (a signed client assertion the simulator verifies)", async () => {
    const { pem } = await clientCertificatePem();
    const clientId = randomUUID();
    simulator.registerApplication({
      clientId,
      certificatePem: pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0],
      systemuserid: randomUUID(),
      roles: ["Integration"],
    });
    const client = simulatorClient(simulator, {
      credentials: { authenticationType: "Certificate", serverAddress: simulator.url, clientId, certificatePem: pem },
    });
    expect((await client.whoAmI()).UserId).toBeTruthy();
    const { pem: otherPem } = await clientCertificatePem();
    const impostor = simulatorClient(simulator, {
      company: "impostor",
      credentials: { authenticationType: "Certificate", serverAddress: simulator.url, clientId, certificatePem: otherPem },
    });
    await expect(impostor.whoAmI()).rejects.toThrow(/AADSTS700027/);
  });

  it("reports a wrong password with the Entra ID reason and no secret", async () => {
    const tokens = simulatorTokens(simulator);
    const attempt = tokens.token("wrong", { ...integrationUser(simulator), password: "not-the-password" });
    await expect(attempt).rejects.toBeInstanceOf(SignInError);
    const error = (await attempt.catch((caught: unknown) => caught)) as SignInError;
    expect(error.kind).toBe("sign-in");
    expect(error.message).toMatch(/^AADSTS50126: Error validating credentials due to invalid username or password\.$/);
    expect(describeFailure(error)).not.toContain("not-the-password");
  });

  it("caches the token per company: a second call does not sign in again", async () => {
    const tokens = simulatorTokens(simulator);
    const before = simulator.entra.tokens.size;
    await tokens.token("cache", {
      authenticationType: "ClientSecret",
      serverAddress: simulator.url,
      clientId: demoClientId,
      clientSecret: demoClientSecret,
      tenantId: simulator.fixture.tenantId,
    });
    await tokens.token("cache", {
      authenticationType: "ClientSecret",
      serverAddress: simulator.url,
      clientId: demoClientId,
      clientSecret: demoClientSecret,
      tenantId: simulator.fixture.tenantId,
    });
    expect(simulator.entra.tokens.size).toBe(before + 1);
  });
});

describe("outbound guard", () => {
  it("refuses a host outside the allowed list before any connection is made", async () => {
    simulator.resetStats();
    const transport = new HttpsTransport({ ca: simulator.ca, guard: new OutboundGuard([]) });
    const attempt = simulatorClient(simulator, { transport }).whoAmI();
    await expect(attempt).rejects.toThrow(/not a Dynamics 365 online host/);
    expect(failureStep(await attempt.catch((error: unknown) => error))).toBe("outbound-guard");
    expect(simulator.stats.connections).toBe(0);
  });

  it("refuses an online host name that resolves to a private address", async () => {
    const resolveToLoopback = ((_host: string, _options: object, callback: (error: null, addresses: { address: string; family: number }[]) => void) =>
      callback(null, [{ address: "127.0.0.1", family: 4 }])) as never;
    const transport = new HttpsTransport({ guard: new OutboundGuard([], resolveToLoopback) });
    const attempt = transport.send({ method: "GET", url: "https://evil.crm4.dynamics.com/api/data/v9.2/WhoAmI" });
    await expect(attempt).rejects.toMatchObject({ kind: "outbound-guard", message: expect.stringMatching(/resolves to 127\.0\.0\.1/) });
  });

  it("accepts Dynamics 365 online hosts and refuses http and other hosts", () => {
    const guard = new OutboundGuard([]);
    for (const url of [
      "https://org.crm.dynamics.com",
      "https://org.crm4.dynamics.com",
      "https://org.api.crm11.dynamics.com",
      "https://org.crm.microsoftdynamics.us",
      "https://org.crm.dynamics.cn",
    ]) {
      expect(() => guard.check(url)).not.toThrow();
    }
    for (const url of [
      "http://org.crm.dynamics.com",
      "https://crm.dynamics.com.evil.example",
      "https://169.254.169.254",
      "https://org.crm.dynamics.com:8443",
      "https://localhost",
    ]) {
      expect(() => guard.check(url)).toThrow();
    }
  });
});

describe("Dataverse client", () => {
  it("reads the version and pages through rows with odata.maxpagesize", async () => {
    const client = simulatorClient(simulator);
    expect(await client.retrieveVersion()).toBe("9.2.24083.00212");
    const marker = randomUUID().slice(0, 8);
    await client.createMultiple(
      "accounts",
      Array.from({ length: 25 }, (_, index) => ({ name: `${marker}-${String(index).padStart(2, "0")}` })),
    );
    const pages: number[] = [];
    for await (const page of client.retrievePages("accounts", { filter: `startswith(name,'${marker}')`, select: ["name"], orderBy: "name desc", pageSize: 10 }))
      pages.push(page.length);
    expect(pages).toEqual([10, 10, 5]);
    const rows = await client.retrieveMultiple<{ name: string }>("accounts", {
      filter: `startswith(name,'${marker}') and name ne '${marker}-00'`,
      select: ["name"],
      orderBy: "name",
    });
    expect(rows.map((row) => row.name)).toEqual(Array.from({ length: 24 }, (_, index) => `${marker}-${String(index + 1).padStart(2, "0")}`));
  });

  it("creates with a chosen id, updates only existing rows, upserts and deletes", async () => {
    const client = simulatorClient(simulator);
    const id = randomUUID();
    expect(await client.create("accounts", { accountid: id, name: "Chosen" })).toBe(id);
    await expect(client.create("accounts", { accountid: id, name: "Again" })).rejects.toMatchObject({ status: 412 });
    await client.update("accounts", id, { name: "Renamed" });
    await expect(client.update("accounts", randomUUID(), { name: "x" })).rejects.toMatchObject({ status: 404, step: "not-found" });
    const other = randomUUID();
    await client.upsert("accounts", other, { name: "Upserted" });
    expect((await client.retrieve("accounts", other, ["name"])).name).toBe("Upserted");
    const row = await client.retrieve<{ name: string; _modifiedby_value: string }>("accounts", id);
    expect(row).toMatchObject({ name: "Renamed", _modifiedby_value: "a1b2c3d4-0001-4000-8000-000000000001" });
    await client.delete("accounts", id);
    await expect(client.retrieve("accounts", id)).rejects.toBeInstanceOf(DataverseRequestError);
  });

  it("upserts many rows in one UpsertMultiple request", async () => {
    const client = simulatorClient(simulator);
    await client.whoAmI();
    const before = simulator.stats.requests;
    const rows = Array.from({ length: 300 }, () => ({ accountid: randomUUID(), name: "bulk" }));
    await client.upsertMultiple("accounts", rows);
    expect(simulator.stats.requests - before).toBe(1);
    expect(rows.every((row) => simulator.store.get("accounts", row.accountid)?.name === "bulk")).toBe(true);
  });

  it("runs a $batch change set all or nothing", async () => {
    const client = simulatorClient(simulator);
    const good = randomUUID();
    const results = await client.batch([
      { method: "POST", path: "accounts", body: { accountid: good, name: "in batch" } },
      { method: "PATCH", path: `accounts(${randomUUID()})`, body: { name: "missing" }, headers: { "If-Match": "*" } },
    ]);
    expect(results.at(-1)?.status).toBe(404);
    await expect(client.retrieve("accounts", good)).rejects.toMatchObject({ status: 404 });
    const ok = await client.batch([
      { method: "POST", path: "accounts", body: { accountid: good, name: "in batch" } },
      { method: "GET", path: `accounts(${good})?$select=name` },
    ]);
    expect(ok.map((result) => result.status)).toEqual([204, 200]);
    expect(ok[1]?.body).toMatchObject({ name: "in batch" });
  });

  it("impersonates another CRM user with MSCRMCallerID", async () => {
    const client = simulatorClient(simulator).impersonate("a1b2c3d4-0006-4000-8000-000000000006");
    expect((await client.whoAmI()).UserId).toBe("a1b2c3d4-0006-4000-8000-000000000006");
  });
});

describe("service protection", () => {
  it("succeeds under a 429 storm by honouring Retry-After, within a bound", async () => {
    const client = simulatorClient(simulator);
    await client.whoAmI();
    simulator.addFault({
      path: /^WhoAmI/,
      status: 429,
      times: 3,
      retryAfterSeconds: 1,
      code: "0x80072322",
      message: "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
    });
    const started = Date.now();
    const throttledBefore = client.stats.throttled;
    await expect(client.whoAmI()).resolves.toMatchObject({ UserId: expect.any(String) });
    const elapsed = Date.now() - started;
    expect(client.stats.throttled - throttledBefore).toBe(3);
    expect(elapsed).toBeGreaterThanOrEqual(2900);
    expect(elapsed).toBeLessThan(6000);
  });

  it("stays under the request limit of the simulator by waiting for the window", async () => {
    const small = await startDataverseSimulator({ limits: { requestsPerWindow: 5, windowSeconds: 1 } });
    try {
      const client = simulatorClient(small);
      const results = await Promise.all(Array.from({ length: 12 }, () => client.whoAmI()));
      expect(results).toHaveLength(12);
      expect(small.stats.throttled).toBeGreaterThan(0);
      expect(client.stats.throttled).toBe(small.stats.throttled);
    } finally {
      await small.close();
    }
  });

  it("gives up on throttling that would wait past its bound, as throttled", async () => {
    const client = simulatorClient(simulator, { retry: { maxWaitMs: 1000 } });
    await client.whoAmI();
    simulator.addFault({ path: /^RetrieveVersion/, status: 429, times: 1, retryAfterSeconds: 30 });
    const attempt = client.retrieveVersion();
    await expect(attempt).rejects.toMatchObject({ status: 429, step: "throttled" });
    simulator.clearFaults();
  });

  it("never sends the ARRAffinity cookie back, so its requests spread over the environment's web servers", async () => {
    const client = simulatorClient(simulator);
    simulator.resetStats();
    await Promise.all(Array.from({ length: 5 }, () => client.whoAmI()));
    expect(simulator.stats.requests).toBeGreaterThanOrEqual(5);
    expect(simulator.stats.affinityCookies).toBe(0);
    // Control: a caller that keeps the cookie it was given is counted.
    const api = await webApiAs(simulator, demoUsers.integration);
    const first = await api("GET", "WhoAmI");
    const cookie = String(first.headers["set-cookie"] ?? "").split(";")[0]!;
    expect(cookie).toMatch(/^ARRAffinity=[0-9a-f]{64}$/);
    await api("GET", "WhoAmI", { headers: { cookie } });
    expect(simulator.stats.affinityCookies).toBe(1);
  });

  it("retries 503 with backoff and follows x-ms-dop-hint for parallelism", async () => {
    const client = simulatorClient(simulator, { maxParallel: 16 });
    simulator.dopHint = 3;
    await client.whoAmI();
    expect(client.parallelism).toBe(3);
    simulator.addFault({ path: /^RetrieveVersion/, status: 503, times: 2 });
    await expect(client.retrieveVersion()).resolves.toBe("9.2.24083.00212");
    // With 50 ms per request, 12 requests started at once overlap: the simulator sees exactly the client's cap.
    simulator.latencyMs = 50;
    try {
      simulator.resetStats();
      await Promise.all(Array.from({ length: 12 }, () => client.retrieve("organizations", simulator.fixture.organization.organizationid)));
      expect(simulator.stats.maxInFlight).toBe(3);
      // Control: a client following a higher hint does run more at once, so the figure above is the cap at work.
      simulator.dopHint = 8;
      const wide = simulatorClient(simulator, { maxParallel: 16, company: "wide" });
      await wide.whoAmI();
      simulator.resetStats();
      await Promise.all(Array.from({ length: 12 }, () => wide.retrieve("organizations", simulator.fixture.organization.organizationid)));
      expect(simulator.stats.maxInFlight).toBe(8);
    } finally {
      simulator.latencyMs = 0;
      simulator.dopHint = 4;
    }
  });
});

describe("errors", () => {
  it("classifies TLS failures when the certificate is not trusted", async () => {
    const transport = new HttpsTransport({ guard: new OutboundGuard([simulator.host]) });
    const attempt = transport.send({ method: "GET", url: `${simulator.url}/api/data/v9.2/` });
    await expect(attempt).rejects.toMatchObject({ kind: "tls" });
  });

  it("classifies a 403 for a user without roles as permission", async () => {
    const client = simulatorClient(simulator, { company: "noroles", credentials: { ...integrationUser(simulator), userName: "noroles@demo.example" } });
    const attempt = client.retrieveMultiple("accounts", { top: 1 });
    await expect(attempt).rejects.toMatchObject({ status: 403, step: "permission" });
  });

  it("classifies a timeout", async () => {
    const client = simulatorClient(simulator, { timeoutMs: 200, retry: { maxAttempts: 1 } });
    await client.whoAmI();
    simulator.addFault({ path: /^RetrieveVersion/, status: 503, times: 1, delayMs: 1000 });
    const attempt = client.retrieveVersion();
    await expect(attempt).rejects.toMatchObject({ kind: "timeout" });
    simulator.clearFaults();
  });

  it("uses the same transport for tokens, so the simulator's certificate is trusted by MSAL", () => {
    expect(simulatorTransport(simulator)).toBeInstanceOf(HttpsTransport);
  });
});
