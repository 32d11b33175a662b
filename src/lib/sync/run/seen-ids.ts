/**
 * The ids a run has met, as 52-bit hashes in an open-addressed table that doubles when half full: 16 to 32 bytes
 * an id, where a Set of the id strings costs about 70, so a run of 100,000 records holds about 2 MB for them
 * rather than 7.
 *
 * `has` never misses an id that was added. It may say yes for one that was not, when two ids share a hash: with
 * 100,000 ids, fewer than one run in 200,000 meets that once. Callers take such a yes down a path that reads the record's
 * state first (a slower path that is right either way), so a shared hash costs a few reads, never a wrong write.
 */
export class SeenIds {
  private slots = new Float64Array(1024);
  /** 32 minus log2 of the slot count: a slot is the top bits of a multiplicative mix of the hash. */
  private shift = 22;
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

  /** The most slots a lookup of an id it holds visits (1 when none shares a home slot): how well hashes spread. */
  longestProbe(): number {
    let longest = 0;
    const mask = this.slots.length - 1;
    this.slots.forEach((value, at) => {
      if (value !== 0) longest = Math.max(longest, ((at - this.home(value)) & mask) + 1);
    });
    return longest;
  }

  /** The slot holding `value`, or -1. Empty slots hold 0, which no hash is. */
  private find(value: number): number {
    const mask = this.slots.length - 1;
    for (let slot = this.home(value); ; slot = (slot + 1) & mask) {
      const held = this.slots[slot]!;
      if (held === value) return slot;
      if (held === 0) return -1;
    }
  }

  private home(value: number): number {
    // Both halves of the hash, mixed (Fibonacci hashing): low bits alone of FNV-1a cluster under linear probing.
    return Math.imul((value >>> 0) ^ (value / 0x100000000), 0x9e3779b1) >>> this.shift;
  }

  private place(value: number): void {
    const mask = this.slots.length - 1;
    let slot = this.home(value);
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = value;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Float64Array(old.length * 2);
    this.shift--;
    for (const value of old) if (value !== 0) this.place(value);
  }
}

/**
 * FNV-1a and a second FNV-style hash (another offset and multiplier), 32 bits each: the low 32 bits and the top 20 of
 * the second (its best-mixed bits), plus one, so no hash is 0.
 */
export function hash52(id: string): number {
  let low = 0x811c9dc5;
  let high = 0x01000193;
  for (let index = 0; index < id.length; index++) {
    const code = id.charCodeAt(index);
    low = Math.imul(low ^ code, 0x01000193) >>> 0;
    high = Math.imul(high ^ code, 0x5bd1e995) >>> 0;
  }
  return (high >>> 12) * 0x100000000 + low + 1;
}
