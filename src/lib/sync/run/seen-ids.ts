/**
 * The ids a run has met, as 52-bit hashes in an open-addressed table: at most 16 bytes an id, where a Set of the id
 * strings costs about 70, so a run of 100,000 records holds 1.6 MB for them rather than 7.
 *
 * `has` never misses an id that was added. It may say yes for one that was not, when two ids share a hash: with
 * 100,000 ids, about one run in 400,000 meets that once. Callers take such a yes down a path that reads the record's
 * state first (a slower path that is right either way), so a shared hash costs a few reads, never a wrong write.
 */
export class SeenIds {
  private slots = new Float64Array(1024);
  private count = 0;

  constructor(private readonly hash: (id: string) => number = hash52) {}

  get size(): number {
    return this.count;
  }

  add(id: string): void {
    const value = this.hash(id);
    if (this.find(value) >= 0) return;
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    this.place(value);
    this.count++;
  }

  has(id: string): boolean {
    return this.find(this.hash(id)) >= 0;
  }

  /** The slot holding `value`, or -1. Empty slots hold 0, which no hash is. */
  private find(value: number): number {
    const mask = this.slots.length - 1;
    for (let slot = value % this.slots.length; ; slot = (slot + 1) & mask) {
      const held = this.slots[slot]!;
      if (held === value) return slot;
      if (held === 0) return -1;
    }
  }

  private place(value: number): void {
    const mask = this.slots.length - 1;
    let slot = value % this.slots.length;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = value;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Float64Array(old.length * 2);
    for (const value of old) if (value !== 0) this.place(value);
  }
}

/** Two 32-bit FNV-1a hashes (different offsets) joined into 52 bits, plus one so that no hash is 0. */
export function hash52(id: string): number {
  let low = 0x811c9dc5;
  let high = 0x01000193;
  for (let index = 0; index < id.length; index++) {
    const code = id.charCodeAt(index);
    low = Math.imul(low ^ code, 0x01000193) >>> 0;
    high = Math.imul(high ^ code, 0x5bd1e995) >>> 0;
  }
  return (high & 0xfffff) * 0x100000000 + low + 1;
}
