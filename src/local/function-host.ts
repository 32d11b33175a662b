// Over 250 lines: serving HTTP as the Functions host does (routes, keys, body limits, local-only checks) and firing the timers;
// the queue poller is queue-poller.ts.
import { invocationContext } from "./invocation-context";
import { QueuePoller } from "./queue-poller";
import { timingSafeEqual } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { HttpRequest, HttpResponse, type HttpResponseInit, type Timer } from "@azure/functions";
import { Cron } from "croner";
import type { FunctionDefinition, HttpFunctionDefinition, QueueFunctionDefinition, TimerFunctionDefinition } from "../lib/http/function-definition";
import { Problem, problemResponse } from "../lib/http/problem";
import { type CompiledRoute, compileRoute } from "./route-template";

export interface FunctionHostInit {
  definitions: FunctionDefinition[];
  port?: number;
  host?: string;
  /** Setting name -> NCRONTAB schedule, for the timer definitions. */
  schedules?: Record<string, string>;
  /** Storage for the queue-triggered definitions (the AzureWebJobsStorage account). */
  queues?: { connectionString: string; pollIntervalMs?: number };
  /** false: timers fire only through fireTimer (tests). */
  startTimers?: boolean;
  log?: (line: string) => void;
  /**
   * When set, routes with authLevel "function" need it (x-functions-key header or ?code=), as in Azure;
   * unset, the local host serves them without a key.
   */
  functionKey?: string;
}

export interface RunningFunctionHost {
  url: string;
  /** Runs a timer function now, as the schedule would. */
  fireTimer(name: string): Promise<void>;
  /** Takes what is waiting in the queues now and runs it, as the next poll would. */
  processQueues(): Promise<number>;
  /** When each started timer fires next (UTC instants), by function name. */
  nextRuns(): Record<string, Date | null>;
  close(): Promise<void>;
}

const maxBodyBytes = 10 * 1024 * 1024;

/**
 * Serves the same function definitions the Functions runtime registers: HTTP functions under /api on
 * a local port, timer functions on their NCRONTAB schedules (croner reads the 6-field, seconds-first form).
 */
export async function startFunctionHost(init: FunctionHostInit): Promise<RunningFunctionHost> {
  const log = init.log ?? ((line: string) => console.log(line));
  const routes = init.definitions
    .filter((definition): definition is HttpFunctionDefinition => definition.trigger === "http")
    .map((definition) => ({ definition, compiled: compileRoute(definition.route) }));
  const timers = init.definitions.filter((definition): definition is TimerFunctionDefinition => definition.trigger === "timer");

  const server = createServer((incoming, outgoing) => {
    serve(incoming, outgoing, routes, log, init.functionKey).catch((error: unknown) => {
      const problem = error instanceof Problem ? error : new Problem(500, "Internal error.", "The local host could not serve the request.");
      if (!(error instanceof Problem)) log(`local host: ${error instanceof Error ? error.message : String(error)}`);
      if (!outgoing.headersSent) outgoing.writeHead(problem.status, { "content-type": "application/problem+json" });
      outgoing.end(problemResponse(problem).body as string);
    });
  });
  // Requests Node refuses before any handler sees them (a 100 kB query string, a malformed request line) still
  // answer with a problem body, as every other refusal does.
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const problem =
      error.code === "HPE_HEADER_OVERFLOW"
        ? new Problem(431, "Request header fields too large.", "The request line and headers are too large; send long input in the body, not the URL.")
        : new Problem(400, "Bad request.", "The request could not be read as HTTP.");
    const body = problemResponse(problem).body as string;
    socket.end(
      `HTTP/1.1 ${problem.status} ${problem.title.replace(/\.$/, "")}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  server.keepAliveTimeout = 5_000;
  await listen(server, init.port ?? 7071, init.host ?? "127.0.0.1");
  const address = server.address() as AddressInfo;
  const url = `http://${init.host === "0.0.0.0" ? "localhost" : (init.host ?? "localhost")}:${address.port}`;

  const running = new Map<string, Promise<void>>();
  const fire = (definition: TimerFunctionDefinition, isPastDue: boolean, next: Date | null): Promise<void> => {
    // Like the Functions host's singleton lock: a timer does not overlap itself.
    const current = running.get(definition.name);
    if (current) return current;
    const timer: Timer = {
      isPastDue,
      schedule: { adjustForDST: true },
      scheduleStatus: { last: new Date().toISOString(), next: next?.toISOString() ?? "", lastUpdated: new Date().toISOString() },
    };
    const run = Promise.resolve()
      .then(() => definition.handler(timer, invocationContext(definition.name, log)))
      .then(() => undefined)
      .catch((error: unknown) => log(`[${definition.name}] failed: ${error instanceof Error ? error.message : String(error)}`))
      .finally(() => running.delete(definition.name));
    running.set(definition.name, run);
    return run;
  };
  const timerJobs = new Map<string, Cron>();
  const jobs = (init.startTimers === false ? [] : timers).map((definition) => {
    const schedule = init.schedules?.[definition.scheduleSetting];
    if (!schedule) throw new Error(`Timer ${definition.name}: no schedule in setting ${definition.scheduleSetting}`);
    // The Functions host reads NCRONTAB in UTC (unless WEBSITE_TIME_ZONE says otherwise), whatever the machine's zone.
    let due = new Cron(schedule, { timezone: "UTC" }).nextRun();
    const job: Cron = new Cron(schedule, { protect: true, timezone: process.env.WEBSITE_TIME_ZONE ?? "UTC" }, () => {
      // Past due, as the host reports it, when the tick comes noticeably later than scheduled (a busy or sleeping machine).
      const pastDue = due !== null && Date.now() - due.getTime() > 1000;
      due = job.nextRun();
      return fire(definition, pastDue, due);
    });
    timerJobs.set(definition.name, job);
    return job;
  });

  const queueDefinitions = init.definitions.filter((definition): definition is QueueFunctionDefinition => definition.trigger === "queue");
  const pollers = queueDefinitions.map((definition) => {
    if (!init.queues) throw new Error(`Queue function ${definition.name} needs queue storage`);
    return new QueuePoller(definition, init.queues.connectionString, log);
  });
  let polling = true;
  let wake: (() => void) | undefined;
  const pollLoop = (async () => {
    if (pollers.length === 0) return;
    await Promise.all(pollers.map((poller) => poller.start()));
    while (polling) {
      await Promise.all(
        pollers.map((poller) => poller.poll().catch((error: unknown) => log(`queue poll: ${error instanceof Error ? error.message : String(error)}`))),
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, init.queues?.pollIntervalMs ?? 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();

  return {
    url,
    async processQueues() {
      let handled = 0;
      for (const poller of pollers) {
        // A background receive may have started before the caller queued its message and come back empty:
        // joining it is not enough. Let it finish, then receive afresh until nothing is waiting.
        handled += await poller.poll();
        for (let received = await poller.poll(); received > 0; received = await poller.poll()) handled += received;
      }
      return handled;
    },
    nextRuns() {
      return Object.fromEntries([...timerJobs].map(([name, job]) => [name, job.nextRun()]));
    },
    async fireTimer(name) {
      const definition = timers.find((timer) => timer.name === name);
      if (!definition) throw new Error(`No timer function named ${name}`);
      await fire(definition, false, null);
    },
    async close() {
      polling = false;
      wake?.();
      await pollLoop;
      for (const job of jobs) job.stop();
      await Promise.allSettled(running.values());
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function serve(
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  routes: { definition: HttpFunctionDefinition; compiled: CompiledRoute }[],
  log: (line: string) => void,
  keyRequired: string | undefined,
): Promise<void> {
  const started = performance.now();
  const method = (incoming.method ?? "GET").toUpperCase();
  let response: HttpResponse;
  let functionName = "-";
  const refusal = localRefusal(incoming, method);
  // As in Azure, a function sees the whole URL it was called by (the Host header is checked just above).
  const url = requestUrl(incoming, refusal ? undefined : incoming.headers.host);
  if (refusal) {
    response = new HttpResponse(problemResponse(refusal));
  } else if (!url.pathname.startsWith("/api/")) {
    response = new HttpResponse(problemResponse(new Problem(404, "Not found.", "Functions are served under /api.")));
  } else {
    const path = url.pathname.slice("/api".length);
    const matches = routes.map((route) => ({ ...route, params: route.compiled.match(path) })).filter((route) => route.params);
    const match = matches.find((route) => route.definition.methods.includes(method as never));
    if (!match) {
      const allowed = [...new Set(matches.flatMap((route) => route.definition.methods))];
      // The Functions host answers 404 for a route whose function does not take this method, as for no route.
      response = new HttpResponse(
        problemResponse(
          new Problem(
            404,
            "Not found.",
            allowed.length > 0 ? `No function serves ${method} ${url.pathname} (it takes ${allowed.join(", ")}).` : `No function serves ${url.pathname}.`,
          ),
        ),
      );
    } else if (match.definition.authLevel !== "anonymous" && keyRequired !== undefined && !hasKey(incoming, url, keyRequired)) {
      response = new HttpResponse(
        problemResponse(new Problem(401, "Unauthorized.", "This function needs a function key: send the x-functions-key header or ?code=.")),
      );
    } else {
      functionName = match.definition.name;
      const body = await readBody(incoming);
      const request = new HttpRequest({
        method,
        url: url.toString(),
        headers: headersOf(incoming),
        query: Object.fromEntries(url.searchParams),
        params: match.params!,
        ...(body.length > 0 && { body: { bytes: body } }),
      });
      const result: HttpResponseInit | HttpResponse | void = await match.definition.handler(request, invocationContext(functionName, log));
      response = result instanceof HttpResponse ? result : new HttpResponse(result ?? { status: 204 });
    }
  }
  const payload = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    headers[key] = value;
  });
  outgoing.writeHead(response.status, headers);
  outgoing.end(method === "HEAD" ? undefined : payload);
  // Path and status only: query strings and bodies may carry data that must not reach a log.
  log(`${method} ${url.pathname} -> ${response.status} (${functionName}, ${Math.round(performance.now() - started)} ms)`);
}

/**
 * The local host serves this machine only: the Host must name it (a page on another site that rebinds its
 * DNS name to 127.0.0.1 sends its own name), and a browser's cross-site write (an Origin of another site)
 * is refused, so a web page cannot reach disable or delete.
 */
function localRefusal(incoming: IncomingMessage, method: string): Problem | undefined {
  const host = hostNameOf(incoming.headers.host);
  if (!host || !localNames.has(host)) return new Problem(400, "Bad request.", "The Host header must name this machine (localhost, 127.0.0.1 or [::1]).");
  const origin = incoming.headers.origin;
  if (origin && !["GET", "HEAD", "OPTIONS"].includes(method)) {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).hostname.replace(/^\[|\]$/g, "").toLowerCase();
    } catch {
      originHost = undefined;
    }
    if (!originHost || !localNames.has(originHost)) return new Problem(403, "Forbidden.", "A page of another origin may not change anything here.");
  }
  return undefined;
}

const localNames = new Set(["localhost", "127.0.0.1", "::1"]);

function hostNameOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^(\[[^\]]+\]|[^:]+)(:\d+)?$/.exec(header.trim());
  return match?.[1]?.replace(/^\[|\]$/g, "").toLowerCase();
}

function requestUrl(incoming: IncomingMessage, host: string | undefined): URL {
  try {
    const url = new URL(incoming.url ?? "/", `http://${host ?? "localhost"}`);
    if (url.host === (host ?? "localhost").toLowerCase()) return url;
  } catch {
    // a Host header that is not a host: the path alone counts
  }
  return new URL(incoming.url ?? "/", "http://localhost");
}

function hasKey(incoming: IncomingMessage, url: URL, key: string): boolean {
  const given = incoming.headers["x-functions-key"] ?? url.searchParams.get("code") ?? "";
  return typeof given === "string" && given.length === key.length && timingSafeEqual(Buffer.from(given), Buffer.from(key));
}

function headersOf(incoming: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(incoming.headers)) {
    if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}

async function readBody(incoming: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) throw new Problem(413, "Payload too large.", `The body exceeds ${maxBodyBytes} bytes.`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
