import { afterEach, describe, expect, it } from "vitest";
import { type DataverseSimulator, type SimulatorOptions, startDataverseSimulator } from "../simulator/simulator";
import { demoUsers, webApiAs } from "../support/raw-dataverse";

// https://learn.microsoft.com/power-apps/developer/data-platform/api-limits: per user, a sliding 5-minute
// window (shortened here), three limits, each answered with 429, its own code and a Retry-After.
let simulator: DataverseSimulator | undefined;
afterEach(() => simulator?.close());

async function start(options: SimulatorOptions) {
  simulator = await startDataverseSimulator(options);
  return { simulator, api: await webApiAs(simulator, demoUsers.integration) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("service protection limits (learn.microsoft.com/power-apps/developer/data-platform/api-limits)", () => {
  it("limits the number of requests per user with 0x80072322 and a Retry-After", async () => {
    const { api } = await start({ limits: { requestsPerWindow: 5, windowSeconds: 60 } });
    for (let index = 0; index < 5; index++) expect((await api("GET", "WhoAmI")).status).toBe(200);
    const refused = await api("GET", "WhoAmI");
    expect(refused.status).toBe(429);
    expect(refused.json.error).toEqual({ code: "0x80072322", message: "Number of requests exceeded the limit of 5 over time window of 60 seconds." });
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(50);
    // Another user has a budget of its own.
    expect((await (await webApiAs(simulator!, demoUsers.admin))("GET", "WhoAmI")).status).toBe(200);
  });

  it("slides the window: requests leave it one by one, as they age, not all at a fixed boundary", async () => {
    const { api } = await start({ limits: { requestsPerWindow: 3, windowSeconds: 2 } });
    expect((await api("GET", "WhoAmI")).status).toBe(200); // t = 0
    await sleep(1200);
    expect((await api("GET", "WhoAmI")).status).toBe(200); // t = 1.2 s
    expect((await api("GET", "WhoAmI")).status).toBe(200);
    await sleep(1000); // t = 2.2 s: the first request has left the window, the two others have not
    expect((await api("GET", "WhoAmI")).status).toBe(200);
    const refused = await api("GET", "WhoAmI");
    // A fixed window restarted at t = 2 s would have admitted this one too.
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe("0x80072322");
  });

  it("limits the combined execution time with 0x80072321, charging bulk rows", async () => {
    const { api, simulator } = await start({ limits: { executionTimeMsPerWindow: 1000, requestCostMs: 10, rowCostMs: 5 } });
    const targets = Array.from({ length: 200 }, (_, index) => ({ "@odata.type": "Microsoft.Dynamics.CRM.account", name: `Cost ${index}` }));
    expect((await api("POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", { body: { Targets: targets } })).status).toBe(200); // 1,010 ms charged
    const refused = await api("GET", "WhoAmI");
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe("0x80072321");
    expect(refused.json.error.message).toMatch(
      /^Combined execution time of incoming requests exceeded limit of 1,000 {2}milliseconds over time window of 300 seconds\./,
    );
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect(simulator.stats.throttledBy["0x80072321"]).toBe(1);
  });

  it("limits concurrent requests with 0x80072326, counted before the request is read", async () => {
    // Each request takes 1.5 s, so the six overlap even on a slow machine.
    const { api, simulator } = await start({ limits: { maxConcurrent: 2 }, latencyMs: 1500 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => api("GET", "WhoAmI")));
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses).toEqual([200, 200, 429, 429, 429, 429]);
    const refused = answers.find((answer) => answer.status === 429)!;
    expect(refused.json.error).toEqual({ code: "0x80072326", message: "Number of concurrent requests exceeded the limit of 2." });
    expect(refused.headers["retry-after"]).toBeDefined();
    expect(simulator.stats.maxInFlight).toBe(2);
  });

  it("sends x-ms-dop-hint and the remaining budget headers with every answer", async () => {
    const { api } = await start({ dopHint: 6, limits: { requestsPerWindow: 100 } });
    const response = await api("GET", "WhoAmI");
    expect(response.headers["x-ms-dop-hint"]).toBe("6");
    expect(response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"]).toBe("99");
    expect(Number(response.headers["x-ms-ratelimit-time-remaining-xrm-requests"])).toBeGreaterThan(0);
  });
});
