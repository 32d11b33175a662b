import { describe, expect, it } from "vitest";
import { activeJobMessages, describeActiveJobs } from "../../src/lib/model/active-jobs";

describe("active scheduled synchronization jobs", () => {
  it("shows 0 of 0 while the connection is disabled", () => {
    expect(describeActiveJobs(["Ready", "Ready"], false)).toMatchObject({ text: "0 of 0", message: activeJobMessages.disabled });
  });

  it("counts Ready and In Process as active", () => {
    const jobs = describeActiveJobs(["Ready", "In Process", "On Hold", "Error", "Ready", "Ready", "Ready", "Ready", "Ready"], true);
    expect(jobs).toEqual({ ready: 7, total: 9, text: "7 of 9", message: activeJobMessages.partlyReady(7, 9) });
  });

  it("says so when all jobs are ready, none are, or none exist", () => {
    expect(describeActiveJobs(["Ready", "In Process"], true).message).toBe(activeJobMessages.allReady);
    expect(describeActiveJobs(["On Hold", "Error"], true).message).toBe(activeJobMessages.noneStarted);
    expect(describeActiveJobs([], true)).toMatchObject({ text: "0 of 0", message: activeJobMessages.noJobs });
  });
});

import { isSupportedCrmVersion } from "../../src/lib/model/connection-setup";

describe("supported CRM versions (major above 6, not 7.1)", () => {
  it.each([
    ["9.2.24083.00212", true],
    ["8.2.0.0", true],
    ["7.0.0.3543", true],
    ["7.1.0.0", false],
    ["6.1.0.0", false],
    ["nonsense", false],
  ])("%s -> %s", (version, supported) => {
    expect(isSupportedCrmVersion(version)).toBe(supported);
  });
});
