/**
 * Dataverse service protection limits, per user, over a sliding window
 * (https://learn.microsoft.com/power-apps/developer/data-platform/api-limits): the number of requests, the
 * combined execution time of requests, and the number of concurrent requests. Each exceeded limit answers
 * 429 with its own error code and a Retry-After.
 */
export interface ServiceProtectionLimits {
  requestsPerWindow: number;
  /** Combined execution time allowed per window, in milliseconds (20 minutes in Dataverse). */
  executionTimeMsPerWindow: number;
  windowSeconds: number;
  maxConcurrent: number;
  /** Server time charged to every request (ms). */
  requestCostMs: number;
  /** Server time charged per row of a bulk message or $batch operation (ms). */
  rowCostMs: number;
}

export const documentedLimits: ServiceProtectionLimits = {
  requestsPerWindow: 6000,
  executionTimeMsPerWindow: 1_200_000,
  windowSeconds: 300,
  maxConcurrent: 52,
  // No official per-row figure exists. Microsoft's BulkOperations samples (PowerApps-Samples, standard
  // table, no plug-ins) create 100 records with CreateMultiple in about 1 s: about 10 ms of server time
  // per row, plus a fixed share per request.
  requestCostMs: 20,
  rowCostMs: 10,
};

export interface Throttle {
  code: "0x80072322" | "0x80072321" | "0x80072326";
  message: string;
  retryAfterSeconds: number;
}

interface UserUsage {
  /** Times (ms) of requests admitted in the window, oldest first. */
  requests: number[];
  /** Execution charged in the window: [time, ms], oldest first. */
  executions: [number, number][];
  executionTotal: number;
  inFlight: number;
}

export class ServiceProtection {
  private readonly users = new Map<string, UserUsage>();
  maxInFlight = 0;
  private totalInFlight = 0;

  constructor(
    readonly limits: ServiceProtectionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Admits a request or says which limit refused it. Synchronous on purpose: the concurrency counter is
   * raised before the caller awaits anything, so concurrent requests see each other.
   */
  admit(user: string): Throttle | undefined {
    const usage = this.usage(user);
    const now = this.now();
    this.expire(usage, now);
    const windowMs = this.limits.windowSeconds * 1000;
    if (usage.inFlight >= this.limits.maxConcurrent) {
      return { code: "0x80072326", message: `Number of concurrent requests exceeded the limit of ${this.limits.maxConcurrent}.`, retryAfterSeconds: 1 };
    }
    if (usage.requests.length >= this.limits.requestsPerWindow) {
      const freeAt = usage.requests[usage.requests.length - this.limits.requestsPerWindow]! + windowMs;
      return {
        code: "0x80072322",
        message: `Number of requests exceeded the limit of ${this.limits.requestsPerWindow} over time window of ${this.limits.windowSeconds} seconds.`,
        retryAfterSeconds: Math.max(1, Math.ceil((freeAt - now) / 1000)),
      };
    }
    if (usage.executionTotal >= this.limits.executionTimeMsPerWindow) {
      // Free once enough old execution falls out of the window to get back under the limit.
      let excess = usage.executionTotal - this.limits.executionTimeMsPerWindow;
      let freeAt = now;
      for (const [time, ms] of usage.executions) {
        excess -= ms;
        freeAt = time + windowMs;
        if (excess < 0) break;
      }
      return {
        code: "0x80072321",
        message: `Combined execution time of incoming requests exceeded limit of ${this.limits.executionTimeMsPerWindow.toLocaleString("en-US")}  milliseconds over time window of ${this.limits.windowSeconds} seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.`,
        retryAfterSeconds: Math.max(1, Math.ceil((freeAt - now) / 1000)),
      };
    }
    usage.requests.push(now);
    usage.inFlight++;
    this.totalInFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.totalInFlight);
    return undefined;
  }

  /** The request finished: release its concurrency slot and charge its execution time. */
  complete(user: string, executionMs: number): void {
    const usage = this.usage(user);
    usage.inFlight--;
    this.totalInFlight--;
    if (executionMs > 0) {
      usage.executions.push([this.now(), executionMs]);
      usage.executionTotal += executionMs;
    }
  }

  /** The cost a request is charged: the per-request cost plus the per-row cost of its rows. */
  costOf(rows: number): number {
    return this.limits.requestCostMs + rows * this.limits.rowCostMs;
  }

  /** x-ms-ratelimit-* headers Dataverse sends with every answer. */
  remaining(user: string): { requests: number; executionMs: number } {
    const usage = this.usage(user);
    this.expire(usage, this.now());
    return {
      requests: Math.max(0, this.limits.requestsPerWindow - usage.requests.length),
      executionMs: Math.max(0, this.limits.executionTimeMsPerWindow - usage.executionTotal),
    };
  }

  reset(): void {
    for (const usage of this.users.values()) {
      usage.requests = [];
      usage.executions = [];
      usage.executionTotal = 0;
    }
    this.maxInFlight = this.totalInFlight;
  }

  private usage(user: string): UserUsage {
    let usage = this.users.get(user);
    if (!usage) {
      usage = { requests: [], executions: [], executionTotal: 0, inFlight: 0 };
      this.users.set(user, usage);
    }
    return usage;
  }

  private expire(usage: UserUsage, now: number): void {
    const since = now - this.limits.windowSeconds * 1000;
    let drop = 0;
    while (drop < usage.requests.length && usage.requests[drop]! <= since) drop++;
    if (drop > 0) usage.requests.splice(0, drop);
    drop = 0;
    while (drop < usage.executions.length && usage.executions[drop]![0] <= since) usage.executionTotal -= usage.executions[drop++]![1];
    if (drop > 0) usage.executions.splice(0, drop);
  }
}
