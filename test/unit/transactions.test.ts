import { describe, expect, it } from "vitest";
import { transactionsOf } from "../../src/lib/storage/partition-buckets";

type Action = readonly ["upsert", { partitionKey: string; rowKey: string; text?: string }];
const action = (partitionKey: string, rowKey: string, text?: string): Action => ["upsert", { partitionKey, rowKey, ...(text && { text }) }];

describe("entity-group transactions within Azure's limits", () => {
  it("keeps each transaction to one partition and 100 actions, and never splits a group", () => {
    const groups = [
      ...Array.from({ length: 60 }, (_, index) => [action("p1", `r${index}`), action("p1", `!c!${index}`)]),
      ...Array.from({ length: 3 }, (_, index) => [action("p2", `r${index}`), action("p2", `!c!${index}`)]),
    ];
    const transactions = transactionsOf(groups);
    expect(transactions.map((transaction) => transaction.flat().length)).toEqual([100, 20, 6]);
    for (const transaction of transactions) expect(new Set(transaction.flat().map((entry) => entry[1].partitionKey)).size).toBe(1);
    expect(transactions.flat()).toHaveLength(63);
  });

  it("splits by payload before 4 MiB: 100 couplings of 60,000 bytes each do not go in one transaction", () => {
    const groups = Array.from({ length: 100 }, (_, index) => [action("p1", `r${index}`, "x".repeat(60_000))]);
    const transactions = transactionsOf(groups);
    expect(transactions.length).toBeGreaterThan(1);
    for (const transaction of transactions) {
      const bytes = transaction.flat().reduce((sum, entry) => sum + (entry[1].text?.length ?? 0), 0);
      expect(bytes).toBeLessThanOrEqual(3 * 1024 * 1024);
    }
    expect(transactions.flat()).toHaveLength(100);
  });

  it("counts UTF-8 bytes, not characters", () => {
    // 20 entities of 100,000 three-byte characters: 6 MB, though only 2,000,000 characters.
    const groups = Array.from({ length: 20 }, (_, index) => [action("p1", `r${index}`, "€".repeat(100_000))]);
    expect(transactionsOf(groups).length).toBeGreaterThanOrEqual(2);
    for (const transaction of transactionsOf(groups)) expect(transaction.length).toBeLessThanOrEqual(10);
  });
});
