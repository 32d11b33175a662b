import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { localhostCertificate } from "../support/tls";
import { EntraSimulator } from "./entra";
import { EntityStore } from "./entity-store";
import { SecurityModel } from "./security";
import { type Fixture, type FixtureApplication, demoFixture, objectIdOf } from "./fixture";
import type { InnerResponse } from "./multipart";
import { ServiceProtection, type ServiceProtectionLimits, documentedLimits } from "./service-protection";
import { WebApi, type WebApiOptions, type WebApiResponse, apiPath, businessUnitId, preferences } from "./web-api";

export type { ServiceProtectionLimits } from "./service-protection";

export interface Fault {
  method?: string;
  /** Matched against the path below /api/data/v9.2/ (e.g. /^accounts/). */
  path?: RegExp;
  status: number;
  times: number;
  retryAfterSeconds?: number;
  /** Wait this long before answering (to provoke client timeouts). */
  delayMs?: number;
  code?: string;
  message?: string;
}

export interface SimulatorOptions {
  port?: number;
  fixture?: Fixture;
  /** Service protection limits and server costs; Dataverse's documented limits when absent. */
  limits?: Partial<ServiceProtectionLimits>;
  latencyMs?: number;
  dopHint?: number;
  /** Take the execution time each request is charged (as a real server spends it), not only count it. */
  spendExecutionTime?: boolean;
  readOnlyColumns?: WebApiOptions["readOnlyColumns"];
  /** Serve GET /_simulator/stats and POST /_simulator/reset (for a benchmark running the simulator in its own process). */
  controlEndpoints?: boolean;
}

export interface SimulatorStats {
  connections: number;
  requests: number;
  throttled: number;
  /** 429s by error code: 0x80072322 requests, 0x80072321 execution time, 0x80072326 concurrency. */
  throttledBy: Record<string, number>;
  byOperation: Record<string, number>;
  maxInFlight: number;
  /** Rows written by bulk messages and $batch operations. */
  rows: number;
  /** Requests that sent the ARRAffinity cookie back (pinning the client to one web server). */
  affinityCookies: number;
}

export type DataverseSimulator = Awaited<ReturnType<typeof startDataverseSimulator>>;

/**
 * A Dataverse organization and its Entra ID tenant on one HTTPS port, for tests, the demo and
 * benchmarks. The certificate is generated at start; `ca` is what clients must trust.
 */
export async function startDataverseSimulator(options: SimulatorOptions = {}) {
  const fixture = options.fixture ?? demoFixture();
  const { cert, key } = await localhostCertificate();
  let baseUrl = "";
  const store = new EntityStore();
  const roles = new Map<string, string[]>();
  const entra = new EntraSimulator(
    fixture,
    () => baseUrl,
    () => baseUrl,
  );
  const api = new WebApi(store, fixture, () => baseUrl, roles, entra, { readOnlyColumns: options.readOnlyColumns ?? "refuse" });
  seed(fixture, store, roles);

  const limits: ServiceProtectionLimits = { ...documentedLimits, ...options.limits };
  const protection = new ServiceProtection(limits);
  const state = { latencyMs: options.latencyMs ?? 0, dopHint: options.dopHint ?? 4, faults: [] as Fault[] };
  const stats: SimulatorStats = { connections: 0, requests: 0, throttled: 0, throttledBy: {}, byOperation: {}, maxInFlight: 0, rows: 0, affinityCookies: 0 };

  const send = (response: ServerResponse, answer: InnerResponse, extra: Record<string, string> = {}) => {
    response.writeHead(answer.status, { "OData-Version": "4.0", "x-ms-service-request-id": randomUUID(), ...answer.headers, ...extra });
    response.end(answer.body);
  };
  const throttled = (response: ServerResponse, code: string, message: string, retryAfterSeconds: number | undefined) => {
    stats.throttled++;
    stats.throttledBy[code] = (stats.throttledBy[code] ?? 0) + 1;
    send(response, api.error(429, code, message), retryAfterSeconds !== undefined ? { "Retry-After": String(retryAfterSeconds) } : {});
  };

  const server = createServer({ cert, key }, (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "https://localhost");
    const method = request.method ?? "GET";
    if (entra.handles(url.pathname)) {
      void readBody(request).then(async (body) => {
        if (state.latencyMs > 0) await sleep(state.latencyMs);
        const answer = entra.handle(method, url.pathname, new URLSearchParams(body));
        response.writeHead(answer.status, { "Content-Type": "application/json; charset=utf-8", ...answer.headers });
        response.end(JSON.stringify(answer.body));
      });
      return;
    }
    if (options.controlEndpoints && url.pathname.startsWith("/_simulator/")) {
      request.resume();
      if (url.pathname === "/_simulator/reset" && method === "POST") {
        Object.assign(stats, { connections: 0, requests: 0, throttled: 0, throttledBy: {}, byOperation: {}, maxInFlight: 0, rows: 0, affinityCookies: 0 });
        protection.reset();
      }
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(JSON.stringify({ stats, limits }));
      return;
    }
    if (url.pathname !== apiPath && !url.pathname.startsWith(`${apiPath}/`)) {
      request.resume();
      send(response, api.error(404, "0x8006088a", `Resource not found for the segment '${url.pathname}'.`));
      return;
    }
    stats.requests++;
    const operation = `${method} ${operationOf(url.pathname.slice(apiPath.length + 1))}`;
    stats.byOperation[operation] = (stats.byOperation[operation] ?? 0) + 1;

    const caller = authenticate(request.headers.authorization);
    if (!caller) {
      request.resume();
      send(response, api.error(401, "0x80072560", "Authentication failed: a valid bearer token for this organization is required."), {
        "WWW-Authenticate": `Bearer authorization_uri=${baseUrl}/${fixture.tenantId}/oauth2/authorize, resource_id=${baseUrl}/`,
      });
      return;
    }
    const fault = state.faults.find(
      (candidate) =>
        candidate.times > 0 &&
        (!candidate.method || candidate.method === method) &&
        (!candidate.path || candidate.path.test(url.pathname.slice(apiPath.length + 1))),
    );
    if (fault) {
      fault.times--;
      void readBody(request).then(async () => {
        if (fault.delayMs) await sleep(fault.delayMs);
        if (fault.status === 429) throttled(response, fault.code ?? "0x80072322", fault.message ?? "An injected fault occurred.", fault.retryAfterSeconds);
        else
          send(
            response,
            api.error(fault.status, fault.code ?? "0x80040216", fault.message ?? "An injected fault occurred."),
            fault.retryAfterSeconds !== undefined ? { "Retry-After": String(fault.retryAfterSeconds) } : {},
          );
      });
      return;
    }
    // Admitted or refused before anything is awaited: concurrent requests count each other.
    const refused = protection.admit(caller.systemuserid);
    if (refused) {
      request.resume();
      throttled(response, refused.code, refused.message, refused.retryAfterSeconds);
      return;
    }
    stats.maxInFlight = Math.max(stats.maxInFlight, protection.maxInFlight);
    void (async () => {
      let answer: WebApiResponse | undefined;
      try {
        const body = await readBody(request);
        if (state.latencyMs > 0) await sleep(state.latencyMs);
        const headers = headersOf(request);
        if (/(^|;\s*)ARRAffinity=/.test(headers["cookie"] ?? "")) stats.affinityCookies++;
        answer =
          url.pathname === `${apiPath}/$batch` && method === "POST"
            ? api.batch(headers["content-type"], body, caller, preferences(headers["prefer"]).has("odata.continue-on-error"), headers)
            : api.handle({ method, url: `${url.pathname}${url.search}`, headers, body }, caller);
        const cost = protection.costOf(answer.rows ?? 0);
        if (options.spendExecutionTime && cost >= 1) await sleep(cost);
      } catch (error) {
        answer = api.error(500, "0x80040216", `An unexpected error occurred: ${(error as Error).message}`);
      } finally {
        protection.complete(caller.systemuserid, protection.costOf(answer?.rows ?? 0));
      }
      stats.rows += answer.rows ?? 0;
      const remaining = protection.remaining(caller.systemuserid);
      const { rows: _rows, ...inner } = answer;
      send(response, inner, {
        "x-ms-dop-hint": String(state.dopHint),
        "x-ms-ratelimit-burst-remaining-xrm-requests": String(remaining.requests),
        "x-ms-ratelimit-time-remaining-xrm-requests": String(Math.floor(remaining.executionMs / 1000)),
        // The App Service front end's session affinity: a client that sends it back stays on one web server.
        "set-cookie": `ARRAffinity=${affinityOf(baseUrl)}; Path=/; HttpOnly; Secure; Domain=${new URL(baseUrl).hostname}`,
      });
    })();
  });
  server.on("connection", () => stats.connections++);

  /** The systemuser a token acts as: by the user's Entra object id, or the application's id; "" when none. */
  function authenticate(header: string | undefined): { systemuserid: string } | undefined {
    const token = /^Bearer (.+)$/.exec(header ?? "")?.[1];
    const issued = token ? entra.tokens.get(token) : undefined;
    if (!issued || issued.expiresAt < Date.now() || issued.audience.replace(/\/$/, "") !== baseUrl.toLowerCase()) return undefined;
    const principal = issued.principal;
    const user = store
      .rows("systemusers")
      .find((row) =>
        principal.kind === "user"
          ? String(row.azureactivedirectoryobjectid ?? "").toLowerCase() === principal.objectId.toLowerCase()
          : String(row.applicationid ?? "").toLowerCase() === principal.clientId.toLowerCase(),
      );
    return { systemuserid: String(user?.systemuserid ?? "") };
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  baseUrl = `https://localhost:${(server.address() as AddressInfo).port}`;

  return {
    /** The organization URL (the Sales URL users enter) and the authority host: one origin. */
    url: baseUrl,
    authorityHost: baseUrl,
    host: new URL(baseUrl).host,
    ca: cert,
    fixture,
    store,
    entra,
    stats,
    limits,
    protection,
    set latencyMs(value: number) {
      state.latencyMs = value;
    },
    set dopHint(value: number) {
      state.dopHint = value;
    },
    addFault(fault: Fault) {
      state.faults.push(fault);
    },
    clearFaults() {
      state.faults.length = 0;
    },
    resetStats() {
      Object.assign(stats, { connections: 0, requests: 0, throttled: 0, throttledBy: {}, byOperation: {}, maxInFlight: 0, rows: 0, affinityCookies: 0 });
      protection.reset();
    },
    registerApplication(application: FixtureApplication) {
      fixture.applications.push(application);
      seedApplication(store, roles, application);
    },
    rolesOf: (systemuserid: string) => roles.get(systemuserid.toLowerCase()) ?? [],
    setRoles: (systemuserid: string, names: string[]) => roles.set(systemuserid.toLowerCase(), names),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function seed(fixture: Fixture, store: EntityStore, roles: Map<string, string[]>): void {
  const currencyId = "c0c0c0c0-0000-4000-8000-000000000001";
  store.seed("transactioncurrencies", {
    transactioncurrencyid: currencyId,
    isocurrencycode: fixture.organization.baseCurrencyCode,
    currencyname: "US Dollar",
    currencysymbol: "$",
    currencyprecision: 2,
    currencytype: 0,
    exchangerate: 1,
  });
  store.seed("organizations", {
    organizationid: fixture.organization.organizationid,
    name: fixture.organization.name,
    issopintegrationenabled: fixture.organization.issopintegrationenabled,
    _basecurrencyid_value: currencyId,
  });
  for (const solution of fixture.solutions)
    store.seed("solutions", { uniquename: solution.uniquename, version: solution.version, friendlyname: solution.uniquename, ismanaged: true });
  for (const name of new SecurityModel().roleNames()) store.seed("roles", { name, _businessunitid_value: businessUnitId });
  for (const user of fixture.users) {
    if (user.notInOrganization) continue;
    const [firstname, ...rest] = user.fullname.split(" ");
    store.seed("systemusers", {
      systemuserid: user.systemuserid,
      firstname,
      lastname: rest.join(" "),
      fullname: user.fullname,
      internalemailaddress: user.internalemailaddress,
      domainname: user.domainname,
      azureactivedirectoryobjectid: objectIdOf(user),
      isdisabled: user.isdisabled ?? false,
      islicensed: user.islicensed ?? true,
      isintegrationuser: false,
      accessmode: 0,
      _businessunitid_value: businessUnitId,
    });
    roles.set(user.systemuserid.toLowerCase(), user.roles);
  }
  for (const application of fixture.applications) seedApplication(store, roles, application);
  for (const [set, rows] of Object.entries(fixture.rows)) for (const row of rows) store.seed(set, row);
}

/** An application user: accessmode 4 (Non-interactive), named after its app registration. */
function seedApplication(store: EntityStore, roles: Map<string, string[]>, application: FixtureApplication): void {
  if (application.notInOrganization || store.get("systemusers", application.systemuserid)) return;
  store.seed("systemusers", {
    systemuserid: application.systemuserid,
    fullname: `# ${application.clientId}`,
    lastname: `# ${application.clientId}`,
    applicationid: application.clientId,
    azureactivedirectoryobjectid: `5e7f1ce0${application.clientId.slice(8)}`,
    accessmode: 4,
    isdisabled: false,
    islicensed: true,
    isintegrationuser: false,
    _businessunitid_value: businessUnitId,
  });
  roles.set(application.systemuserid.toLowerCase(), application.roles);
}

/** A short name for statistics: `accounts`, `accounts(id)`, `accounts/UpsertMultiple`, `$batch`, `WhoAmI`. */
function operationOf(path: string): string {
  return path
    .replace(/\([0-9a-fA-F-]{36}\)/g, "(id)")
    .replace("Microsoft.Dynamics.CRM.", "")
    .replace(/\(\)$/, "");
}

function headersOf(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  return headers;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A web server's affinity value, as the front end writes it (64 hex digits). */
function affinityOf(baseUrl: string): string {
  return createHash("sha256").update(baseUrl).digest("hex");
}
