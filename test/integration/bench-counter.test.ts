import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { operationCounter } from "../../bench/operation-counter";
import { CouplingRepository } from "../../src/lib/storage/coupling-repository";
import { TableStorage } from "../../src/lib/storage/table-storage";
import { requestCounter } from "../support/request-counter";

// The benchmark's "table ops/record" column comes from this counter, in the process whose memory it reports.
describe("the benchmark's storage counter", () => {
  it("counts every storage round trip the tests' recorder sees, transactions included, and starts again on reset", async () => {
    const counter = operationCounter();
    const recorder = requestCounter();
    const couplings = new CouplingRepository(
      new TableStorage(
        { connectionString: process.env.AzureWebJobsStorage! },
        { allowInsecureConnection: true, additionalPolicies: [counter.policy, recorder.policy] },
      ),
    );
    const company = `bench-counter-${randomUUID().slice(0, 8)}`;
    const written = Array.from({ length: 250 }, (_, index) => ({ erpId: `C${index}`, crmId: randomUUID(), pending: false }));
    await couplings.save(company, "CUSTOMER", written);
    expect(await couplings.load(company, "CUSTOMER")).toHaveLength(250);

    expect(recorder.transactions.length, "the coupling writes went as transactions").toBeGreaterThan(0);
    expect(counter.count).toBe(recorder.requests.length);
    counter.reset();
    await couplings.get(company, "CUSTOMER", "C1");
    expect(counter.count).toBe(1);
  });
});
