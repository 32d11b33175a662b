// A run's hold on its mapping row: one run of a mapping at a time, across instances.
import type { StoredMapping } from "../../model/job-entry";
import { ConcurrencyError } from "../../storage/setup-repository";
import type { SyncRepository } from "../../storage/sync-repository";
import { MappingBusyError, type RunDeps, leaseMsOf } from "./run-context";

export async function acquireLease(deps: RunDeps, owner: string, company: string, name: string, waitMs: number): Promise<Lease> {
  const until = Date.now() + waitMs;
  const ttlMs = leaseMsOf(deps.init.config);
  let heldUntil: Date | undefined;
  for (;;) {
    const stored = await deps.init.sync.mapping(company, name);
    if (!stored) throw new Error(`Company ${company} has no mapping ${name}.`);
    const now = deps.clock().getTime();
    const held = stored.value.runLeaseOwner && stored.value.runLeaseOwner !== owner && Date.parse(stored.value.runLeaseExpiresAt ?? "") > now;
    heldUntil = held ? new Date(Date.parse(stored.value.runLeaseExpiresAt!)) : undefined;
    if (!held) {
      const state: StoredMapping = { ...stored.value, runLeaseOwner: owner, runLeaseExpiresAt: new Date(now + ttlMs).toISOString() };
      try {
        const etag = await deps.init.sync.saveMapping(state, stored.etag);
        return new Lease(deps.init.sync, state, etag, () => deps.clock().getTime(), ttlMs);
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
      }
    }
    if (Date.now() >= until) throw new MappingBusyError(name, heldUntil);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * A run's hold on its mapping row; every save renews it and goes through the row's ETag. The hold is short
 * and renewed by a heartbeat while the run lives, so a run whose instance died (kill -9, a recycled worker)
 * frees its mapping within one lease period rather than after the longest run could take.
 */
export class Lease {
  /** Saves one after another: the heartbeat and the run's own saves share the row's ETag. */
  private queue: Promise<unknown> = Promise.resolve();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly sync: SyncRepository,
    public state: StoredMapping,
    private etag: string,
    private readonly now: () => number,
    private readonly ttlMs: number,
  ) {
    this.heartbeat = setInterval(() => void this.renew().catch(() => this.stopHeartbeat()), Math.max(1000, Math.floor(ttlMs / 3)));
    // A heartbeat alone never keeps the process alive.
    this.heartbeat.unref();
  }

  /**
   * Saves the run's changes (watermarks, lease). An admin may change the mapping's settings meanwhile: the
   * row is read again and the run's changes applied over it, as long as this run still holds the lease.
   */
  save(change: Partial<StoredMapping>): Promise<void> {
    const saved = this.queue.then(() => this.write(change));
    this.queue = saved.catch(() => undefined);
    return saved;
  }

  renew(): Promise<void> {
    return this.save({});
  }

  /** Lets go of the mapping: the next run (here or on another instance) may take it at once. */
  release(): Promise<void> {
    this.stopHeartbeat();
    return this.save({ runLeaseOwner: undefined, runLeaseExpiresAt: undefined });
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private async write(change: Partial<StoredMapping>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const next: StoredMapping = { ...this.state, ...change };
      if (next.runLeaseOwner) next.runLeaseExpiresAt = new Date(this.now() + this.ttlMs).toISOString();
      for (const [key, value] of Object.entries(change)) if (value === undefined) delete (next as unknown as Record<string, unknown>)[key];
      try {
        this.etag = await this.sync.saveMapping(next, this.etag);
        this.state = next;
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt >= 4) throw error;
        const latest = await this.sync.mapping(this.state.company, this.state.name);
        if (!latest || latest.value.runLeaseOwner !== this.state.runLeaseOwner) {
          this.stopHeartbeat();
          throw new MappingBusyError(this.state.name);
        }
        const { definitionJson } = latest.value;
        this.state = { ...this.state, definitionJson };
        this.etag = latest.etag;
      }
    }
  }
}
