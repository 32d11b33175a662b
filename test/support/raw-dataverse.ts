import { request as httpsRequest } from "node:https";
import { demoPassword, xrmToolingSampleClientId } from "../simulator/fixture";
import { afterAll, beforeAll } from "vitest";
import { type DataverseSimulator, startDataverseSimulator } from "../simulator/simulator";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: any;
}

/** One HTTPS request to the simulator, trusting its certificate: no client library in between. */
export function rawRequest(
  simulator: DataverseSimulator,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(`${simulator.url}${path}`, { method, ca: simulator.ca, headers: init.headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(response.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
        resolve({ status: response.statusCode ?? 0, headers, text, json });
      });
    });
    request.on("error", reject);
    if (init.body !== undefined) request.write(init.body);
    request.end();
  });
}

/** The token endpoint, called as a client would (form post). */
export function tokenRequest(simulator: DataverseSimulator, form: Record<string, string>): Promise<RawResponse> {
  return rawRequest(simulator, "POST", `/${simulator.fixture.tenantId}/oauth2/v2.0/token`, {
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
}

/** An access token for a fixture user (password grant through the XRM tooling sample app). */
export async function userToken(simulator: DataverseSimulator, userName: string): Promise<string> {
  const response = await tokenRequest(simulator, {
    grant_type: "password",
    client_id: xrmToolingSampleClientId,
    username: userName,
    password: demoPassword,
    scope: `${simulator.url}/.default`,
  });
  if (response.status !== 200) throw new Error(`sign-in failed for ${userName}: ${response.text}`);
  return response.json.access_token as string;
}

/** A Web API caller for one user: `api("GET", "accounts?$select=name")`. */
export async function webApiAs(simulator: DataverseSimulator, userName: string) {
  const token = await userToken(simulator, userName);
  return (method: string, path: string, init: { headers?: Record<string, string>; body?: unknown } = {}) =>
    rawRequest(simulator, method, `/api/data/v9.2/${path}`, {
      headers: {
        authorization: `Bearer ${token}`,
        accept: "application/json",
        "odata-version": "4.0",
        ...(init.body !== undefined && typeof init.body !== "string" && { "content-type": "application/json" }),
        ...init.headers,
      },
      ...(init.body !== undefined && { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) }),
    });
}

export const demoUsers = {
  integration: "integration@demo.example",
  admin: "admin@demo.example",
  jane: "jane@demo.example",
  noRoles: "noroles@demo.example",
  outsider: "outsider@demo.example",
  mfa: "mfa@demo.example",
  blocked: "blocked@demo.example",
  federated: "federated@demo.example",
} as const;

/**
 * A simulator for one test file and a Web API caller signed in as the integration user:
 * `const web = useSimulatorApi(); ... web.api("GET", "WhoAmI")`, `web.simulator.store`.
 */
export function useSimulatorApi() {
  const state = {} as { simulator: DataverseSimulator; api: Awaited<ReturnType<typeof webApiAs>> };
  beforeAll(async () => {
    state.simulator = await startDataverseSimulator();
    state.api = await webApiAs(state.simulator, demoUsers.integration);
  });
  afterAll(() => state.simulator.close());
  return {
    get simulator() {
      return state.simulator;
    },
    api: (...args: Parameters<Awaited<ReturnType<typeof webApiAs>>>) => state.api(...args),
  };
}
