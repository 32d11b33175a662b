import { describe, expect, it } from "vitest";
import { DataverseClient } from "../../src/lib/dataverse/dataverse-client";
import { DataverseRequestError } from "../../src/lib/dataverse/dataverse-errors";
import type { HttpsTransport, TransportRequest, TransportResponse } from "../../src/lib/dataverse/https-transport";
import { throttleCodes } from "../../src/lib/dataverse/concurrency-limit";

// The Dataverse client's retry and concurrency rules against a scripted transport: no server, no timing.
type Script = (request: TransportRequest, index: number) => TransportResponse;

function fakeTransport(script: Script) {
  const requests: TransportRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const transport = {
    async send(request: TransportRequest): Promise<TransportResponse> {
      requests.push(request);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight--;
      return script(request, requests.length - 1);
    },
  } satisfies Pick<HttpsTransport, "send">;
  return { transport, requests, maxInFlight: () => maxInFlight };
}

const ok = (body: unknown = { value: [] }, headers: Record<string, string> = {}): TransportResponse => ({
  status: 200,
  headers: { "content-type": "application/json", ...headers },
  body: Buffer.from(JSON.stringify(body)),
});
const failure = (status: number, code: string, headers: Record<string, string> = {}): TransportResponse => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  body: Buffer.from(JSON.stringify({ error: { code, message: `failure ${code}` } })),
});
const client = (transport: Pick<HttpsTransport, "send">, maxParallel = 4) =>
  new DataverseClient({
    serverAddress: "https://org.crm.dynamics.com",
    transport,
    getToken: async () => "token",
    maxParallel,
    retry: { baseDelayMs: 1, maxWaitMs: 1000 },
  });

describe("the Dataverse client's rules", () => {
  it("waits Retry-After on a 429 and tries again; backs off on 503; never retries a 400", async () => {
    const throttled = fakeTransport((_request, index) => (index === 0 ? failure(429, throttleCodes.requests, { "retry-after": "0.01" }) : ok({ UserId: "u" })));
    const one = client(throttled.transport);
    expect(await one.whoAmI()).toMatchObject({ UserId: "u" });
    expect(throttled.requests).toHaveLength(2);
    expect(one.stats).toMatchObject({ throttled: 1, retries: 1 });

    const unavailable = fakeTransport((_request, index) => (index < 2 ? failure(503, "0x80040216") : ok({ UserId: "u" })));
    expect(await client(unavailable.transport).whoAmI()).toMatchObject({ UserId: "u" });
    expect(unavailable.requests).toHaveLength(3);

    const refused = fakeTransport(() => failure(400, "0x80048d19"));
    await expect(client(refused.transport).whoAmI()).rejects.toBeInstanceOf(DataverseRequestError);
    expect(refused.requests).toHaveLength(1);
  });

  it("stops at once when its run is cancelled: the request in flight and the wait before a retry", async () => {
    // Cancelled while waiting out a 429: no second request, and the canceller's reason.
    const stop = new AbortController();
    const throttled = fakeTransport(() => {
      setImmediate(() => stop.abort(new Error("The host is shutting down.")));
      return failure(429, throttleCodes.requests, { "retry-after": "0.5" });
    });
    await expect(client(throttled.transport).withSignal(stop.signal).whoAmI()).rejects.toThrow("The host is shutting down.");
    expect(throttled.requests).toHaveLength(1);
    // The signal reaches the transport with each request; a client already cancelled sends nothing.
    const seen = fakeTransport(() => ok({ UserId: "u" }));
    const running = new AbortController();
    await client(seen.transport).withSignal(running.signal).whoAmI();
    expect(seen.requests[0]!.signal).toBe(running.signal);
    running.abort(new Error("stopped"));
    await expect(client(seen.transport).withSignal(running.signal).whoAmI()).rejects.toThrow("stopped");
    expect(seen.requests).toHaveLength(1);
  });

  it("gives up when Retry-After would wait past its budget, with the throttled error", async () => {
    const always = fakeTransport(() => failure(429, throttleCodes.executionTime, { "retry-after": "5" }));
    const error = await client(always.transport)
      .whoAmI()
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 429, code: throttleCodes.executionTime });
    expect(always.requests).toHaveLength(1);
  });

  it("halves its concurrency on execution-time and concurrency 429s, probes back up on success, and keeps it on request-count 429s", async () => {
    let mode: "throttle-execution" | "throttle-requests" | "ok" = "throttle-execution";
    let throttledOnce = false;
    const scripted = fakeTransport(() => {
      if (!throttledOnce && mode !== "ok") {
        throttledOnce = true;
        return failure(429, mode === "throttle-execution" ? throttleCodes.executionTime : throttleCodes.requests, { "retry-after": "0.001" });
      }
      return ok({ UserId: "u" }, { "x-ms-dop-hint": "8" });
    });
    const dataverse = client(scripted.transport, 8);
    // A few at once until Dataverse says how many (x-ms-dop-hint), then what it says, within the client's cap.
    expect(dataverse.parallelism).toBe(4);
    mode = "ok";
    await dataverse.whoAmI();
    expect(dataverse.parallelism).toBe(8);
    mode = "throttle-execution";
    await dataverse.whoAmI();
    expect(dataverse.parallelism).toBe(4);
    // Each run of successes as long as the limit adds one: 4 + 5 + 6 + 7 successes reach the ceiling again.
    for (let index = 0; index < 4 + 5 + 6 + 7; index++) await dataverse.whoAmI();
    expect(dataverse.parallelism).toBe(8);
    mode = "throttle-requests";
    throttledOnce = false;
    await dataverse.whoAmI();
    expect(dataverse.parallelism).toBe(8);
  });

  it("runs as many requests at once as x-ms-dop-hint recommends, up to the client's cap and 52", async () => {
    let hint = "16";
    const hinted = fakeTransport(() => ok({ value: [] }, { "x-ms-dop-hint": hint }));
    const uncapped = client(hinted.transport, 52);
    await uncapped.whoAmI();
    expect(uncapped.parallelism).toBe(16);
    hint = "80";
    await uncapped.whoAmI();
    expect(uncapped.parallelism).toBe(52);
    const capped = client(hinted.transport, 6);
    await capped.whoAmI();
    expect(capped.parallelism).toBe(6);
  });

  it("runs no more requests at once than x-ms-dop-hint allows", async () => {
    const hinted = fakeTransport(() => ok({ value: [] }, { "x-ms-dop-hint": "2" }));
    const dataverse = client(hinted.transport, 6);
    await dataverse.whoAmI();
    await Promise.all(Array.from({ length: 20 }, () => dataverse.whoAmI()));
    expect(dataverse.parallelism).toBe(2);
    expect(hinted.maxInFlight()).toBeLessThanOrEqual(2);
  });
});
