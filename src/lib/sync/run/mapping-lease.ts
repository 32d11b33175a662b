// A run's hold on its mapping row: one run of a mapping at a time, across instances.
import type { StoredMapping } from "../../model/job-entry";
import { ConcurrencyError } from "../../storage/setup-repository";
import type { SyncRepository } from "../../storage/sync-repository";
import { MappingBusyError, type RunDeps, leaseMs } from "./run-context";
export async function acquireLease(deps: RunDeps, owner: string, company: string, name: string, waitMs: number): Promise<Lease> {
  const until = Date.now() + waitMs;
  for (;;) {
    const stored = await deps.init.sync.mapping(company, name);
    if (!stored) throw new Error(`Company ${company} has no mapping ${name}.`);
    const now = deps.clock().getTime();
    const held = stored.value.runLeaseOwner && stored.value.runLeaseOwner !== owner && Date.parse(stored.value.runLeaseExpiresAt ?? "") > now;
    if (!held) {
      const state: StoredMapping = { ...stored.value, runLeaseOwner: owner, runLeaseExpiresAt: new Date(now + leaseMs).toISOString() };
      try {
        const etag = await deps.init.sync.saveMapping(state, stored.etag);
        return new Lease(deps.init.sync, state, etag, () => deps.clock().getTime());
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
      }
    }
    if (Date.now() >= until) throw new MappingBusyError(name);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** A run's hold on its mapping row; every save renews it and goes through the row's ETag. */
export class Lease {
  constructor(
    private readonly sync: SyncRepository,
    public state: StoredMapping,
    private etag: string,
    private readonly now: () => number,
  ) {}

  /**
   * Saves the run's changes (watermarks, lease). An admin may change the mapping's settings meanwhile: the
   * row is read again and the run's changes applied over it, as long as this run still holds the lease.
   */
  async save(change: Partial<StoredMapping>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const next: StoredMapping = { ...this.state, ...change };
      if (next.runLeaseOwner) next.runLeaseExpiresAt = new Date(this.now() + leaseMs).toISOString();
      for (const [key, value] of Object.entries(change)) if (value === undefined) delete (next as unknown as Record<string, unknown>)[key];
      try {
        this.etag = await this.sync.saveMapping(next, this.etag);
        this.state = next;
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt >= 4) throw error;
        const latest = await this.sync.mapping(this.state.company, this.state.name);
        if (!latest || latest.value.runLeaseOwner !== this.state.runLeaseOwner) throw new MappingBusyError(this.state.name);
        const { definitionJson } = latest.value;
        this.state = { ...this.state, definitionJson };
        this.etag = latest.etag;
      }
    }
  }

  renew(): Promise<void> {
    return this.save({});
  }

  /** Lets go of the mapping: the next run (here or on another instance) may take it at once. */
  release(): Promise<void> {
    return this.save({ runLeaseOwner: undefined, runLeaseExpiresAt: undefined });
  }
}
