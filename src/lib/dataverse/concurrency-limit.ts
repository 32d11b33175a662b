/**
 * A semaphore whose limit can change while in use: Dataverse tells clients how many requests to run in
 * parallel (x-ms-dop-hint), so the cap follows the latest hint without dropping queued work.
 */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private limit: number) {}

  get current(): number {
    return this.limit;
  }

  setLimit(limit: number): void {
    this.limit = Math.max(1, Math.floor(limit));
    this.wake();
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
