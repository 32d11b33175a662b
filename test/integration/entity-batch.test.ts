import { AzureNamedKeyCredential, TableClient, type TableTransaction } from "@azure/data-tables";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/lib/config";
import { type BatchAction, submitBatch } from "../../src/lib/storage/entity-batch";
import { TableStorage, storageStatus } from "../../src/lib/storage/table-storage";

let sdk: TableClient;
let ours: TableClient;
beforeAll(async () => {
  const tables = new TableStorage({ connectionString: loadConfig().AzureWebJobsStorage! });
  [sdk, ours] = await Promise.all([tables.table("batchsdk"), tables.table("batchours")]);
});

/** The rows of a partition as the service returns them, without what each write changes (ETag, timestamp). */
async function rows(table: TableClient, partitionKey: string): Promise<Record<string, unknown>[]> {
  const found: Record<string, unknown>[] = [];
  const filter = `PartitionKey eq '${partitionKey.replace(/'/g, "''")}'`;
  for await (const row of table.listEntities({ queryOptions: { filter } })) {
    const { etag: _etag, timestamp: _timestamp, ...rest } = row as Record<string, unknown>;
    found.push(rest);
  }
  return found;
}

/** What a transaction came to: done, or refused with the service's status. */
async function outcome(submit: () => Promise<unknown>): Promise<string> {
  try {
    await submit();
    return "done";
  } catch (error) {
    const status = storageStatus(error);
    if (status === undefined) throw error;
    return `refused ${status}`;
  }
}

// Characters keys may hold (not / \ # ? or control characters), with those a URL or OData key must escape.
const keyText = fc.string({ unit: fc.constantFrom(..."aZ09'%!~é (),;=@&$+*-_.ø😀"), minLength: 1, maxLength: 12 });
// Each entity holds some of the properties: a merge keeps the others, a replace drops them.
const properties = fc.record(
  { s: fc.string({ maxLength: 40 }), t: fc.string({ maxLength: 5 }), n: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), b: fc.boolean() },
  { requiredKeys: [] },
);
const staleEtag = `W/"datetime'2000-01-01T00%3A00%3A00.0000000Z'"`;

describe("entity-group transactions rendered by entity-batch.ts", () => {
  it("leave the table as the SDK's submitTransaction does, action for action, refusals included (Azurite)", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        keyText,
        fc.uniqueArray(keyText, { minLength: 1, maxLength: 3 }),
        fc.array(
          fc.array(fc.tuple(fc.nat(3), fc.constantFrom("create", "upsert", "update", "delete"), fc.boolean(), fc.boolean(), properties), {
            minLength: 1,
            maxLength: 4,
          }),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        async (partitionText, rowKeys, transactions) => {
          const partitionKey = `${++run}~${partitionText}`;
          for (const transaction of transactions) {
            // One action per row per transaction, as the service requires.
            const byRow = new Map(transaction.map(([index, ...rest]) => [rowKeys[index % rowKeys.length]!, rest] as const));
            const actions: BatchAction[] = [...byRow].map(([rowKey, [kind, replace, stale, values]]) => {
              const entity = { partitionKey, rowKey, ...values };
              if (kind === "create") return ["create", entity];
              if (kind === "delete") return ["delete", { partitionKey, rowKey }];
              if (kind === "upsert") return ["upsert", entity, replace ? "Replace" : "Merge"];
              return ["update", entity, replace ? "Replace" : "Merge", stale ? { etag: staleEtag } : {}];
            });
            const theirs = await outcome(() => sdk.submitTransaction(actions as unknown as TableTransaction["actions"]));
            const mine = await outcome(() => submitBatch(ours, actions));
            expect(mine).toBe(theirs);
            expect(await rows(ours, partitionKey)).toEqual(await rows(sdk, partitionKey));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("takes 100 actions at once and names the service's refusal (a row already there)", async () => {
    const partitionKey = "full~'quoted'";
    const creates = Array.from({ length: 100 }, (_, index): BatchAction => {
      const entity = { partitionKey, rowKey: `r${index}`, n: index };
      return ["create", entity];
    });
    await submitBatch(ours, creates);
    expect(await rows(ours, partitionKey)).toHaveLength(100);
    const existing = { partitionKey, rowKey: "r7", n: 0 };
    const again = await submitBatch(ours, [["create", existing]]).catch((error: unknown) => error);
    expect(storageStatus(again)).toBe(409);
    expect((again as { code?: string }).code).toBe("EntityAlreadyExists");
    // A type the service would need an annotation for is refused before anything is sent.
    const dated = { partitionKey, rowKey: "x", when: new Date() };
    await expect(submitBatch(ours, [["upsert", dated]])).rejects.toThrow(/Property when \(object\)/);
  });

  it("sends plain HTTP only to Azurite on loopback, and a SAS on the batch request only", async () => {
    const remote = new TableClient("http://storage.example.com", "t", new AzureNamedKeyCredential("account", Buffer.from("key").toString("base64")));
    await expect(submitBatch(remote, [["delete", { partitionKey: "p", rowKey: "r" }]])).rejects.toThrow(/allowInsecureConnection is false/);
    const sent: string[] = [];
    const withSas = new TableClient("https://account.table.core.windows.net?sv=2019-02-02&sig=abc", "t", {
      additionalPolicies: [
        {
          position: "perCall",
          policy: {
            name: "capture",
            sendRequest: async (request) => {
              sent.push(request.url, String(request.body));
              throw new Error("captured");
            },
          },
        },
      ],
    });
    await expect(submitBatch(withSas, [["delete", { partitionKey: "p", rowKey: "r" }]])).rejects.toThrow("captured");
    expect(sent[0]).toBe("https://account.table.core.windows.net/$batch?sv=2019-02-02&sig=abc");
    expect(sent[1]).toContain("DELETE https://account.table.core.windows.net/t(PartitionKey='p',RowKey='r') HTTP/1.1");
  });
});
