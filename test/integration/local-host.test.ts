import { spawn } from "node:child_process";
import { execSync } from "node:child_process";
import { createServer } from "node:net";
import type { Timer } from "@azure/functions";
import { describe, expect, it } from "vitest";
import type { FunctionDefinition } from "../../src/lib/http/function-definition";
import { startFunctionHost } from "../../src/local/function-host";

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function azuriteProcessesOf(parentPid: number): number {
  const out = execSync("ps -eo pid,ppid,args").toString();
  return out.split("\n").filter((line) => line.includes("azurite") && line.trim().split(/\s+/)[1] === String(parentPid)).length;
}

describe("npm start (local host)", () => {
  it("answers /api/health within 20 s and stops everything on Ctrl-C", async () => {
    const port = await freePort();
    const started = Date.now();
    const child = spawn(process.execPath, ["--import", "tsx", "src/local/main.ts", "--port", String(port)], {
      env: { ...process.env, AzureWebJobsStorage: "UseDevelopmentStorage=true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    try {
      let healthy = false;
      while (!healthy && Date.now() - started < 20_000) {
        healthy = await fetch(`http://127.0.0.1:${port}/api/health`)
          .then((response) => response.status === 200)
          .catch(() => false);
        if (!healthy) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(healthy, output).toBe(true);
      expect(output).toContain("Ready:");
      expect(azuriteProcessesOf(child.pid!)).toBe(1);
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGINT");
      expect(await exited).toBe(0);
    }
    expect(azuriteProcessesOf(child.pid!)).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/api/health`)).rejects.toThrow();
  });

  it("stops with a message naming a bad setting", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/local/main.ts", "--port", String(await freePort())], {
      env: { ...process.env, SYNC_BATCH_SIZE: "lots" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(1);
    expect(output).toMatch(/SYNC_BATCH_SIZE: .*number/);
  });
});

describe("function host", () => {
  it("fires timer definitions on their NCRONTAB schedule", async () => {
    const fired: Timer[] = [];
    const definitions: FunctionDefinition[] = [
      { name: "every-second", trigger: "timer", scheduleSetting: "SYNC_SCHEDULE", summary: "test", handler: async (timer) => void fired.push(timer) },
    ];
    const host = await startFunctionHost({ definitions, port: 0, schedules: { SYNC_SCHEDULE: "*/1 * * * * *" }, log: () => {} });
    // Two firings, however busy the machine: the schedule is what is checked, not the timing.
    for (let waited = 0; fired.length < 2 && waited < 15_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
    await host.close();
    expect(fired.length).toBeGreaterThanOrEqual(2);
    // (A busy machine may fire a tick late: past due is then true, as the Functions host says too.)
    expect(fired[0]).toMatchObject({ isPastDue: expect.any(Boolean), scheduleStatus: { next: expect.any(String) } });
  });

  it("passes route params, query, headers and body, and returns status and headers", async () => {
    const definitions: FunctionDefinition[] = [
      {
        name: "echo",
        trigger: "http",
        route: "things/{id}/parts/{part?}",
        methods: ["POST"],
        authLevel: "anonymous",
        summary: "test",
        handler: async (request) => ({
          status: 207,
          headers: { "x-echo": request.headers.get("x-in") ?? "" },
          jsonBody: { params: request.params, query: request.query.get("q"), body: await request.json() },
        }),
      },
    ];
    const host = await startFunctionHost({ definitions, port: 0, log: () => {} });
    try {
      const response = await fetch(`${host.url}/api/things/a%20b/parts?q=1`, { method: "POST", headers: { "x-in": "hi" }, body: '{"n":1}' });
      expect(response.status).toBe(207);
      expect(response.headers.get("x-echo")).toBe("hi");
      expect(await response.json()).toEqual({ params: { id: "a b" }, query: "1", body: { n: 1 } });
      // As the Functions host: a route whose function does not take the method is not found.
      const wrongMethod = await fetch(`${host.url}/api/things/x/parts`);
      expect(wrongMethod.status).toBe(404);
      expect((await fetch(`${host.url}/api/nothing`)).status).toBe(404);
    } finally {
      await host.close();
    }
  });
});

describe("timers as the Functions host runs them", () => {
  it("reads NCRONTAB schedules in UTC whatever the machine's time zone", async () => {
    const zone = process.env.TZ;
    process.env.TZ = "Asia/Tokyo";
    const definitions: FunctionDefinition[] = [
      { name: "at-three", trigger: "timer", scheduleSetting: "SYNC_SCHEDULE", summary: "test", handler: async () => {} },
    ];
    const host = await startFunctionHost({ definitions, port: 0, schedules: { SYNC_SCHEDULE: "0 0 3 * * *" }, log: () => {} });
    try {
      const next = host.nextRuns()["at-three"]!;
      expect(next.getUTCHours()).toBe(3);
      expect(next.getUTCMinutes()).toBe(0);
    } finally {
      await host.close();
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });
});
