// The ERP side of a run's changes, read as the run goes rather than all at once.
import type { ErpChange } from "../../storage/erp-record-repository";

/**
 * The ERP changes after the watermark, oldest first, passing over those the last run processed within the lag.
 * It keeps what the watermarks need as changes go by (the last stamp read; the changes past the safe point), so
 * a run of any size holds a few pages of the feed, not the feed.
 */
export class ErpFeed {
  /** The stamp of the last change read, passed-over ones included: where the watermark goes once all are done. */
  lastStamp: string | undefined;
  /** Changes read past the safe point: the next run reads them again, and passes over those done. */
  readonly pastSafePoint: { id: string; modifiedAt: string }[] = [];
  private peeked: ErpChange | undefined;

  constructor(
    private readonly changes: AsyncGenerator<ErpChange>,
    private readonly processedWithinLag: Set<string>,
    private readonly safePoint: string,
  ) {}

  /** The next change to process; undefined at the end of the feed. */
  async next(): Promise<ErpChange | undefined> {
    const peeked = this.peeked;
    if (peeked) {
      this.peeked = undefined;
      return peeked;
    }
    for (;;) {
      const { done, value } = await this.changes.next();
      if (done) return undefined;
      const { id, modifiedAt } = value.record;
      this.lastStamp = modifiedAt;
      if (modifiedAt > this.safePoint) this.pastSafePoint.push({ id, modifiedAt });
      if (!this.processedWithinLag.has(erpEntry(value.record))) return value;
    }
  }

  /** The next change to process, left for next() to return. */
  async peek(): Promise<ErpChange | undefined> {
    this.peeked ??= await this.next();
    return this.peeked;
  }

  /** Stops reading (a run stopped early, or failed): the pages being read are dropped. */
  async close(): Promise<void> {
    await this.changes.return(undefined);
  }
}

export function erpEntry(change: { id: string; modifiedAt: string }): string {
  return `${change.id}@${change.modifiedAt}`;
}
