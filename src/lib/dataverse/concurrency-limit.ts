/** Dataverse's service protection error codes, by the limit that answered. */
export const throttleCodes = { requests: "0x80072322", executionTime: "0x80072321", concurrency: "0x80072326" } as const;

/**
 * At most `limit` requests in flight, the limit adapting as Dataverse answers (additive increase,
 * multiplicative decrease): the ceiling is what the server's x-ms-dop-hint says, capped by the client's
 * setting, and the limit takes it as it is; a 429 for combined execution time or for concurrency halves the
 * limit (fewer requests at once spend less server time), and from then on each run of successes as long as
 * the limit adds one back, up to the ceiling. A 429 for the number of requests does not change it: only
 * waiting (Retry-After) helps there.
 */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private limit: number;
  private successes = 0;
  /** Since a throttle, until the limit is back at the ceiling: a higher ceiling is then reached step by step. */
  private probing = false;

  constructor(private ceiling: number) {
    this.limit = Math.max(1, Math.floor(ceiling));
  }

  get current(): number {
    return this.limit;
  }

  /** The most requests that may be in flight (the server's x-ms-dop-hint, capped by the client's setting). */
  setCeiling(ceiling: number): void {
    const next = Math.max(1, Math.floor(ceiling));
    if (next === this.ceiling) return;
    this.ceiling = next;
    // The service's recommendation is taken at once, up or down; after a throttle it is approached by probing.
    this.limit = this.probing ? Math.min(this.limit, next) : next;
    this.wake();
  }

  /** A request succeeded: after as many successes as the limit, one more may run at once. */
  succeeded(): void {
    if (this.limit >= this.ceiling) {
      this.probing = false;
      return;
    }
    if (++this.successes >= this.limit) {
      this.successes = 0;
      this.limit++;
      this.wake();
    }
  }

  /** Dataverse answered 429 with this error code. */
  throttled(code: string): void {
    this.successes = 0;
    if (code === throttleCodes.executionTime || code === throttleCodes.concurrency) {
      this.limit = Math.max(1, Math.floor(this.limit / 2));
      this.probing = true;
    }
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    // A waiter is woken with its slot already counted, so nobody can take it in between.
    if (this.active < this.limit) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      this.active--;
      this.wake();
    }
  }

  private wake(): void {
    while (this.active < this.limit && this.waiting.length > 0) {
      this.active++;
      this.waiting.shift()!();
    }
  }
}
