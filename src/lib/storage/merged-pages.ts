/**
 * Merges sources that each yield sorted pages into one sorted stream. Each source holds its current page and
 * reads its next one while that page is used, so a reader holds at most two pages per source (the unread part of
 * one and the next), never the whole. Pages are consumed: each item's slot is cleared once yielded.
 */
export async function* mergeSortedPages<T>(sources: AsyncIterator<T[]>[], before: (a: T, b: T) => boolean): AsyncGenerator<T> {
  const readers = sources.map((source) => new PageReader(source));
  try {
    for (;;) {
      let first: PageReader<T> | undefined;
      for (const reader of readers) {
        // Only a reader at the end of its page waits (for its next page): the others' heads are at hand.
        const head = reader.atHand() ? reader.current() : await reader.head();
        if (head !== undefined && (first === undefined || before(head, first.current()))) first = reader;
      }
      if (!first) return;
      const item = first.current();
      first.advance();
      yield item;
    }
  } finally {
    await Promise.all(readers.map((reader) => reader.close()));
  }
}

class PageReader<T> {
  private page: T[] = [];
  private at = 0;
  private upcoming: Promise<IteratorResult<T[]>> | undefined;

  constructor(private readonly source: AsyncIterator<T[]>) {
    this.upcoming = this.read();
  }

  private read(): Promise<IteratorResult<T[]>> {
    const next = this.source.next();
    // Marked handled: a reader dropped with a read under way must not fail the process; head() still sees the error.
    next.catch(() => undefined);
    return next;
  }

  /** The reader's next item, reading pages as needed; undefined once the source is done. */
  async head(): Promise<T | undefined> {
    while (this.at >= this.page.length) {
      if (!this.upcoming) return undefined;
      const next = await this.upcoming;
      if (next.done) {
        this.upcoming = undefined;
        return undefined;
      }
      this.page = next.value;
      this.at = 0;
      this.upcoming = this.read();
    }
    return this.page[this.at];
  }

  atHand(): boolean {
    return this.at < this.page.length;
  }

  current(): T {
    return this.page[this.at]!;
  }

  advance(): void {
    // The item is the merge's now: the page no longer holds it, so a page read through is freed as it goes.
    this.page[this.at++] = undefined as T;
  }

  async close(): Promise<void> {
    // A page being read when the reader stops is awaited and dropped (its failure no longer matters).
    const pending = this.upcoming;
    this.upcoming = undefined;
    await pending?.catch(() => undefined);
    await this.source.return?.().catch(() => undefined);
  }
}
