import { describe, expect, it } from "vitest";
import { requestCounter } from "../support/request-counter";
import { useSyncHarness } from "../support/sync-harness";
import { ErpRecordRepository } from "../../src/lib/storage/erp-record-repository";
import { TableStorage } from "../../src/lib/storage/table-storage";

// "What changed since the watermark" reads the change log: its cost follows the changes, not the records.
const harness = useSyncHarness();

describe("the ERP change log", () => {
  it("finds exactly the records changed after a stamp, deletions included, with reads that do not grow with the table", async () => {
    const company = await harness.enabledCompany();
    const storage = requestCounter();
    const repository = new ErpRecordRepository(
      new TableStorage({ connectionString: harness.demo.app.services.config.AzureWebJobsStorage! }, { additionalPolicies: [storage.policy] }),
    );
    const count = async (work: () => Promise<unknown>) => {
      storage.reset();
      await work();
      return storage.requests.length;
    };
    const stored = await repository.upsert(
      company,
      "customers",
      Array.from({ length: 300 }, (_, index) => ({ id: `C${index}`, name: `Customer ${index}` })),
    );
    const since = stored.at(-1)!.modifiedAt;
    await repository.upsert(company, "customers", [{ id: "C7", name: "Changed" }]);
    await repository.delete(company, "customers", "C8");
    const changed = await repository.changedSince(company, "customers", since);
    expect(changed.map((record) => [record.id, record.deleted])).toEqual([
      ["C7", false],
      ["C8", true],
    ]);
    const small = await count(() => repository.changedSince(company, "customers", since));
    // One read of the log, and a point read per changed record: no query over the records themselves.
    const recordQueries = storage.to("erprecords").filter((request) => !/erprecords\(PartitionKey=/.test(decodeURIComponent(new URL(request.url).pathname)));
    expect(recordQueries).toEqual([]);
    expect(storage.to("erpchanges")).toHaveLength(1);
    // (The record written at the watermark's own stamp is read once more and left out.)
    expect(storage.to("erprecords").length).toBeLessThanOrEqual(3);
    await repository.upsert(
      company,
      "customers",
      Array.from({ length: 700 }, (_, index) => ({ id: `D${index}`, name: `More ${index}` })),
    );
    const after = (await repository.changedSince(company, "customers")).at(-1)!.modifiedAt;
    expect(await repository.changedSince(company, "customers", after)).toEqual([]);
    expect(await count(() => repository.changedSince(company, "customers", after))).toBeLessThanOrEqual(small);
    // Without a stamp (a full synchronization) every record is read.
    expect((await repository.changedSince(company, "customers")).length).toBe(1000);
  });
});
