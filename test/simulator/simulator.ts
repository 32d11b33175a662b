import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { localhostCertificate } from "../support/tls";
import { EntraSimulator } from "./entra";
import { EntityStore } from "./entity-store";
import { type Fixture, type FixtureApplication, demoFixture } from "./fixture";
import type { InnerResponse } from "./multipart";
import { WebApi, apiPath } from "./web-api";

/** Dataverse service protection limits, per user (https://learn.microsoft.com/power-apps/developer/data-platform/api-limits). */
export interface ServiceProtectionLimits {
  requestsPerWindow: number;
  windowSeconds: number;
  maxConcurrent: number;
}

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
  limits?: Partial<ServiceProtectionLimits>;
  latencyMs?: number;
  dopHint?: number;
}

export interface SimulatorStats {
  connections: number;
  requests: number;
  throttled: number;
  byOperation: Record<string, number>;
  maxInFlight: number;
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
  const entra = new EntraSimulator(fixture, () => baseUrl, () => baseUrl);
  const api = new WebApi(store, fixture, () => baseUrl, roles, entra);
  seed(fixture, store, roles);

  const limits: ServiceProtectionLimits = { requestsPerWindow: 6000, windowSeconds: 300, maxConcurrent: 52, ...options.limits };
  const state = { latencyMs: options.latencyMs ?? 0, dopHint: options.dopHint ?? 4, faults: [] as Fault[] };
  const stats: SimulatorStats = { connections: 0, requests: 0, throttled: 0, byOperation: {}, maxInFlight: 0 };
  const windows = new Map<string, { start: number; count: number }>();
  const inFlight = new Map<string, number>();
  let totalInFlight = 0;

  const send = (response: ServerResponse, answer: InnerResponse, extra: Record<string, string> = {}) => {
    response.writeHead(answer.status, { "OData-Version": "4.0", "x-ms-service-request-id": randomUUID(), ...answer.headers, ...extra });
    response.end(answer.body);
  };

  const server = createServer({ cert, key }, async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "https://localhost");
    const method = request.method ?? "GET";
    const body = await readBody(request);
    if (state.latencyMs > 0) await sleep(state.latencyMs);

    if (entra.handles(url.pathname)) {
      const answer = entra.handle(method, url.pathname, new URLSearchParams(body));
      response.writeHead(answer.status, { "Content-Type": "application/json; charset=utf-8", ...answer.headers });
      response.end(JSON.stringify(answer.body));
      return;
    }
    if (!url.pathname.startsWith(apiPath)) {
      send(response, api.error(404, "0x80060888", `Resource not found for the segment '${url.pathname}'.`));
      return;
    }
    stats.requests++;
    const operation = `${method} ${operationOf(url.pathname.slice(apiPath.length + 1))}`;
    stats.byOperation[operation] = (stats.byOperation[operation] ?? 0) + 1;

    const caller = authenticate(request.headers.authorization);
    if (!caller) {
      send(response, api.error(401, "0x80072560", "Authentication failed: a valid bearer token for this organization is required."), {
        "WWW-Authenticate": `Bearer authorization_uri=${baseUrl}/${fixture.tenantId}/oauth2/authorize, resource_id=${baseUrl}/`,
      });
      return;
    }
    const fault = state.faults.find((candidate) => candidate.times > 0 && (!candidate.method || candidate.method === method) && (!candidate.path || candidate.path.test(url.pathname.slice(apiPath.length + 1))));
    if (fault) {
      fault.times--;
      if (fault.delayMs) await sleep(fault.delayMs);
      if (fault.status === 429) stats.throttled++;
      send(response, api.error(fault.status, fault.code ?? "0x80040216", fault.message ?? "An injected fault occurred."), fault.retryAfterSeconds !== undefined ? { "Retry-After": String(fault.retryAfterSeconds) } : {});
      return;
    }
    const throttle = checkLimits(caller.systemuserid);
    if (throttle) {
      stats.throttled++;
      send(response, api.error(429, throttle.code, throttle.message), { "Retry-After": String(throttle.retryAfterSeconds) });
      return;
    }
    inFlight.set(caller.systemuserid, (inFlight.get(caller.systemuserid) ?? 0) + 1);
    totalInFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, totalInFlight);
    try {
      const headers = headersOf(request);
      const answer =
        url.pathname === `${apiPath}/$batch` && method === "POST"
          ? api.batch(headers["content-type"], body, caller, /odata\.continue-on-error/.test(headers["prefer"] ?? ""))
          : api.handle({ method, url: `${url.pathname}${url.search}`, headers, body }, caller);
      send(response, answer, { "x-ms-dop-hint": String(state.dopHint) });
    } finally {
      inFlight.set(caller.systemuserid, (inFlight.get(caller.systemuserid) ?? 1) - 1);
      totalInFlight--;
    }
  });
  server.on("connection", () => stats.connections++);

  function authenticate(header: string | undefined): { systemuserid: string } | undefined {
    const token = /^Bearer (.+)$/.exec(header ?? "")?.[1];
    const issued = token ? entra.tokens.get(token) : undefined;
    if (!issued || issued.expiresAt < Date.now() || issued.audience.replace(/\/$/, "") !== baseUrl.toLowerCase()) return undefined;
    return { systemuserid: issued.systemuserid };
  }

  function checkLimits(user: string): { code: string; message: string; retryAfterSeconds: number } | undefined {
    const now = Date.now();
    let window = windows.get(user);
    if (!window || now - window.start >= limits.windowSeconds * 1000) {
      window = { start: now, count: 0 };
      windows.set(user, window);
    }
    if ((inFlight.get(user) ?? 0) >= limits.maxConcurrent) {
      return { code: "0x80072326", message: `Number of concurrent requests exceeded the limit of ${limits.maxConcurrent}.`, retryAfterSeconds: 1 };
    }
    window.count++;
    if (window.count > limits.requestsPerWindow) {
      const retryAfterSeconds = Math.max(1, Math.ceil((window.start + limits.windowSeconds * 1000 - now) / 1000));
      return { code: "0x80072322", message: `Number of requests exceeded the limit of ${limits.requestsPerWindow} over time window of ${limits.windowSeconds} seconds.`, retryAfterSeconds };
    }
    return undefined;
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
      Object.assign(stats, { connections: 0, requests: 0, throttled: 0, byOperation: {}, maxInFlight: 0 });
      windows.clear();
    },
    registerApplication(application: FixtureApplication) {
      fixture.applications.push(application);
      if (!store.get("systemusers", application.systemuserid)) {
        store.seed("systemusers", { systemuserid: application.systemuserid, fullname: `# ${application.clientId}`, applicationid: application.clientId, accessmode: 4, isdisabled: false, islicensed: true, isintegrationuser: false });
      }
      roles.set(application.systemuserid.toLowerCase(), application.roles);
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
  store.seed("transactioncurrencies", { transactioncurrencyid: currencyId, isocurrencycode: fixture.organization.baseCurrencyCode, currencyname: fixture.organization.baseCurrencyCode, exchangerate: 1 });
  store.seed("organizations", {
    organizationid: fixture.organization.organizationid,
    name: fixture.organization.name,
    issopintegrationenabled: fixture.organization.issopintegrationenabled,
    _basecurrencyid_value: currencyId,
  });
  for (const solution of fixture.solutions) store.seed("solutions", { uniquename: solution.uniquename, version: solution.version, friendlyname: solution.uniquename, ismanaged: true });
  const roleNames = new Set([...fixture.users, ...fixture.applications].flatMap((principal) => principal.roles));
  for (const name of roleNames) store.seed("roles", { name });
  for (const user of fixture.users) {
    store.seed("systemusers", {
      systemuserid: user.systemuserid,
      fullname: user.fullname,
      internalemailaddress: user.internalemailaddress,
      domainname: user.domainname,
      isdisabled: user.isdisabled ?? false,
      islicensed: user.islicensed ?? true,
      isintegrationuser: false,
      accessmode: 0,
    });
    roles.set(user.systemuserid.toLowerCase(), user.roles);
  }
  for (const application of fixture.applications) {
    store.seed("systemusers", { systemuserid: application.systemuserid, fullname: `# ${application.clientId}`, applicationid: application.clientId, accessmode: 4, isdisabled: false, islicensed: true, isintegrationuser: false });
    roles.set(application.systemuserid.toLowerCase(), application.roles);
  }
  for (const [set, rows] of Object.entries(fixture.rows)) for (const row of rows) store.seed(set, row);
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
