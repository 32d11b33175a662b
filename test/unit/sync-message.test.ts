import { describe, expect, it } from "vitest";
import { syncMessage } from "../../src/lib/storage/work-queue";

describe("queued sync messages", () => {
  it("are taken only in the shapes the service sends", () => {
    expect(syncMessage.parse({ kind: "job", company: "cronus", job: "CUSTOMER", runId: "r1", now: true })).toMatchObject({ kind: "job", now: true });
    expect(syncMessage.parse({ kind: "full", company: "cronus", runId: "r1" })).toMatchObject({ kind: "full" });
    for (const bad of [
      {},
      { kind: "job", company: "cronus", runId: "r1" },
      { kind: "wipe", company: "cronus", runId: "r1" },
      { kind: "full", company: "", runId: "r1" },
      "job",
    ]) {
      expect(syncMessage.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
