import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SeenIds, hash52 } from "../../src/lib/sync/run/seen-ids";

describe("the ids a run has met", () => {
  it("knows every id it was given, through any number of growths", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ maxLength: 20 }), { maxLength: 3000 }), (ids) => {
        const seen = new SeenIds();
        for (const id of ids) seen.add(id);
        for (const id of ids) seen.add(id);
        expect(seen.size).toBe(ids.length);
        expect(ids.every((id) => seen.has(id))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it("says no to ids it was not given: 200,000 ERP-style codes, none taken for another", () => {
    const seen = new SeenIds();
    const code = (index: number) => `C${String(index).padStart(6, "0")}`;
    for (let index = 0; index < 100_000; index++) seen.add(code(index));
    let wrong = 0;
    for (let index = 100_000; index < 300_000; index++) if (seen.has(code(index))) wrong++;
    expect(wrong).toBe(0);
  });

  it("spreads ids that differ in a character or two over the table: a lookup visits a few dozen slots at most", () => {
    for (const code of [(index: number) => `C${String(index).padStart(6, "0")}`, (index: number) => `${index}`, (index: number) => `company~${index}~x`]) {
      const seen = new SeenIds();
      for (let index = 0; index < 100_000; index++) seen.add(code(index));
      expect(seen.longestProbe(), code(7)).toBeLessThanOrEqual(48);
    }
  });

  it("with ids sharing a hash, says yes to any of that hash (the caller's slower path is then taken) and never no to one given", () => {
    const seen = new SeenIds((id) => (id.length % 3) + 1);
    for (const id of ["a", "bb", "ccc", "dddd"]) seen.add(id);
    expect(["a", "bb", "ccc", "dddd", "e", "ff"].map((id) => seen.has(id))).toEqual([true, true, true, true, true, true]);
    const apart = new SeenIds((id) => (id === "x" ? 5 : 9));
    apart.add("y");
    expect(apart.has("x")).toBe(false);
  });

  it("hashes to whole numbers from 1 to 2^52, so a hash is never an empty slot and doubles hold it exactly", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (id) => {
        const value = hash52(id);
        expect(Number.isInteger(value)).toBe(true);
        expect(value).toBeGreaterThanOrEqual(1);
        expect(value).toBeLessThanOrEqual(2 ** 52);
      }),
    );
  });
});
