import { AzureNamedKeyCredential, TableClient, type TableTransaction } from "@azure/data-tables";
import { type PipelineRequest, type PipelineResponse, createHttpHeaders } from "@azure/core-rest-pipeline";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/lib/config";
import { type BatchAction, submitBatch } from "../../src/lib/storage/entity-batch";
import { TableStorage, getRow, storageStatus } from "../../src/lib/storage/table-storage";

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

/** A client of the account at `url` whose requests never leave: each is recorded (URL, body) and answered by `answer`. */
function recordingClient(url: string, answer: (request: PipelineRequest) => PipelineResponse): { client: TableClient; sent: string[] } {
  const sent: string[] = [];
  const client = new TableClient(url, "t", {
    additionalPolicies: [
      {
        position: "perCall",
        policy: {
          name: "answer",
          sendRequest: async (request) => {
            sent.push(request.url, String(request.body));
            return answer(request);
          },
        },
      },
    ],
  });
  return { client, sent };
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
          fc.array(
            fc.tuple(fc.nat(3), fc.constantFrom("create", "upsert", "update", "delete"), fc.boolean(), fc.constantFrom("any", "stale", "read"), properties),
            {
              minLength: 1,
              maxLength: 4,
            },
          ),
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
            // An update names any version, a stale one, or the one each table holds (read from that table).
            const actionsFor = async (table: TableClient): Promise<BatchAction[]> =>
              Promise.all(
                [...byRow].map(async ([rowKey, [kind, replace, version, values]]): Promise<BatchAction> => {
                  const entity = { partitionKey, rowKey, ...values };
                  if (kind === "create") return ["create", entity];
                  if (kind === "delete") return ["delete", { partitionKey, rowKey }];
                  if (kind === "upsert") return ["upsert", entity, replace ? "Replace" : "Merge"];
                  const held = version === "read" ? await getRow(table, partitionKey, rowKey) : undefined;
                  const etag = version === "stale" ? staleEtag : held?.etag;
                  return ["update", entity, replace ? "Replace" : "Merge", etag === undefined ? {} : { etag }];
                }),
              );
            const [theirActions, myActions] = await Promise.all([actionsFor(sdk), actionsFor(ours)]);
            const theirs = await outcome(() => sdk.submitTransaction(theirActions as unknown as TableTransaction["actions"]));
            const mine = await outcome(() => submitBatch(ours, myActions));
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
    const unknown = { partitionKey, rowKey: "x", n: Number.NaN };
    await expect(submitBatch(ours, [["upsert", unknown]])).rejects.toThrow("Property n (NaN) is not a finite number.");
    expect(await rows(ours, partitionKey)).toHaveLength(100);
  });

  it("sends plain HTTP only to Azurite on loopback, and a SAS on the batch request only", async () => {
    const remote = new TableClient("http://storage.example.com", "t", new AzureNamedKeyCredential("account", Buffer.from("key").toString("base64")));
    await expect(submitBatch(remote, [["delete", { partitionKey: "p", rowKey: "r" }]])).rejects.toThrow(/allowInsecureConnection is false/);
    const { client: withSas, sent } = recordingClient("https://account.table.core.windows.net?sv=2019-02-02&sig=abc", () => {
      throw new Error("captured");
    });
    await expect(submitBatch(withSas, [["delete", { partitionKey: "p", rowKey: "r" }]])).rejects.toThrow("captured");
    expect(sent[0]).toBe("https://account.table.core.windows.net/$batch?sv=2019-02-02&sig=abc");
    expect(sent[1]).toContain("DELETE https://account.table.core.windows.net/t(PartitionKey='p',RowKey='r') HTTP/1.1");
  });

  it("reads Azure's answers: each action's status, a failed action's refusal, a refusal outside the changeset, a short answer", async () => {
    let answer: { status: number; body: string } = { status: 202, body: "" };
    const { client, sent } = recordingClient("https://account.table.core.windows.net/", (request) => ({
      request,
      status: answer.status,
      headers: createHttpHeaders(),
      bodyAsText: answer.body,
    }));
    const two: BatchAction[] = [
      ["delete", { partitionKey: "p", rowKey: "a" }],
      ["delete", { partitionKey: "p", rowKey: "b" }],
    ];
    const part = (status: string, body = "") =>
      `--changesetresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 ${status}\r\nX-Content-Type-Options: nosniff\r\n\r\n${body}\r\n`;
    const refusal = (code: string, value: string) => JSON.stringify({ "odata.error": { code, message: { lang: "en-US", value } } });
    const batchOf = (...parts: string[]) =>
      `--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n\r\n${parts.join("")}--changesetresponse_1--\r\n--batchresponse_1--\r\n`;
    const statusOf = (error: unknown) => [storageStatus(error), (error as { code?: string }).code];

    answer = { status: 202, body: batchOf(part("204 No Content"), part("204 No Content")) };
    await submitBatch(client, two);
    // The endpoint's trailing slash is not doubled.
    expect(sent[0]).toBe("https://account.table.core.windows.net/$batch");
    expect(sent[1]).toContain("DELETE https://account.table.core.windows.net/t(PartitionKey='p',RowKey='a') HTTP/1.1");

    answer = { status: 202, body: batchOf(part("404 Not Found", refusal("ResourceNotFound", "1:The specified resource does not exist."))) };
    expect(statusOf(await submitBatch(client, two).catch((error: unknown) => error))).toEqual([404, "ResourceNotFound"]);
    answer = {
      status: 202,
      body: `--batchresponse_1\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 400 Bad Request\r\n\r\n${refusal("InvalidInput", "Bad batch.")}\r\n--batchresponse_1--\r\n`,
    };
    expect(statusOf(await submitBatch(client, two).catch((error: unknown) => error))).toEqual([400, "InvalidInput"]);
    answer = { status: 413, body: refusal("RequestBodyTooLarge", "Too large.") };
    expect(statusOf(await submitBatch(client, two).catch((error: unknown) => error))).toEqual([413, "RequestBodyTooLarge"]);
    answer = { status: 202, body: batchOf(part("204 No Content")) };
    await expect(submitBatch(client, two)).rejects.toThrow("The transaction's answer covers 1 of 2 actions.");
    answer = { status: 202, body: "" };
    await expect(submitBatch(client, two)).rejects.toThrow("covers 0 of 2");
  });
});
