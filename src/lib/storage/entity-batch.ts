/**
 * Entity-group transactions (the Table service's `$batch`), rendered here and sent through the TableClient's own
 * pipeline (its credential, retries and policies). The SDK's `submitTransaction` renders each action by running
 * it through a whole client pipeline (a tracing span, operation-spec serialization, URL templating): about 28 KB
 * of garbage per entity, half of everything a large sync run allocated. The wire format is the SDK's, action for
 * action (test/integration/entity-batch.test.ts compares the two against Azurite), for Azure Storage accounts and
 * Azurite; Cosmos DB's Table API, which wants merges sent another way, is not used by this service.
 */
import { randomUUID } from "node:crypto";
import {
  type HttpClient,
  type PipelineRequest,
  type PipelineResponse,
  RestError,
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineRequest,
} from "@azure/core-rest-pipeline";
import type { TableClient } from "@azure/data-tables";

type Keys = { partitionKey: string; rowKey: string };
type Entity = Keys & object;

/** The SDK's transaction actions this service uses (update and upsert merge unless told to replace). */
export type BatchAction =
  | readonly ["create", Entity]
  | readonly ["upsert", Entity, ("Merge" | "Replace")?]
  | readonly ["update", Entity, ("Merge" | "Replace")?, { etag?: string }?]
  | readonly ["delete", Keys];

const lineEnding = "\r\n";
let httpClient: HttpClient | undefined;

/**
 * Submits actions on one partition as one transaction: all are applied or none. A failed action fails the
 * transaction with a RestError carrying its status (404, 409, 412...) and the service's error code, as the SDK's does.
 */
export async function submitBatch(table: TableClient, actions: readonly BatchAction[]): Promise<void> {
  if (actions.length === 0) return;
  const batch = `batch_${randomUUID()}`;
  const changeset = `changeset_${randomUUID()}`;
  // A SAS rides on the batch request, not on the actions inside it (as the SDK sends it). The account URL may end
  // in "/" (a storage account's table endpoint does).
  const [account, sas] = table.url.split("?");
  const accountUrl = account!.replace(/\/+$/, "");
  const tableUrl = `${accountUrl}/${table.tableName}`;
  const parts = [`--${batch}${lineEnding}content-type: multipart/mixed; boundary=${changeset}${lineEnding}${lineEnding}`];
  for (const action of actions) parts.push(subRequest(changeset, tableUrl, action));
  const body = `${parts.join(lineEnding)}${lineEnding}--${changeset}--${lineEnding}--${batch}--${lineEnding}`;
  const request = createPipelineRequest({
    url: `${accountUrl}/$batch${sas ? `?${sas}` : ""}`,
    method: "POST",
    body,
    headers: createHttpHeaders({
      accept: "application/json",
      "x-ms-version": "2019-02-02",
      DataServiceVersion: "3.0;",
      MaxDataServiceVersion: "3.0;NetFx",
      "Content-Type": `multipart/mixed; boundary=${batch}`,
      "Accept-Charset": "UTF-8",
    }),
    // Azurite speaks plain HTTP on loopback; anywhere else the pipeline refuses http, as TableStorage's clients do.
    allowInsecureConnection: /^http:\/\/(127\.0\.0\.1|localhost)[:/]/i.test(table.url),
  });
  httpClient ??= createDefaultHttpClient();
  const response = await table.pipeline.sendRequest(httpClient, request);
  const text = response.bodyAsText ?? "";
  if (response.status < 200 || response.status >= 300) throw batchError(text, response.status, request, response);
  // Each action answers with a status line; a failed transaction answers with the failing action's only.
  const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)];
  for (const match of statuses) {
    const status = Number(match[1]);
    if (status >= 300) throw batchError(text.slice(match.index), status, request, response);
  }
  // Success is every action answered: a short or empty answer is not taken as a transaction applied.
  if (statuses.length !== actions.length)
    throw new RestError(`The transaction's answer covers ${statuses.length} of ${actions.length} actions.`, { statusCode: response.status, request, response });
}

function subRequest(changeset: string, tableUrl: string, action: BatchAction): string {
  const lines = [`--${changeset}`, "content-type: application/http", "content-transfer-encoding: binary", ""];
  switch (action[0]) {
    case "create":
      lines.push(`POST ${tableUrl} HTTP/1.1`, "Content-Type: application/json;odata=nometadata", "Accept: application/json;odata=minimalmetadata");
      lines.push("DataServiceVersion: 3.0", "Prefer: return-no-content", "", "", entityJson(action[1]));
      break;
    case "upsert":
    case "update": {
      const method = action[2] === "Replace" ? "PUT" : "PATCH";
      lines.push(
        `${method} ${entityUrl(tableUrl, action[1])} HTTP/1.1`,
        "Content-Type: application/json",
        "DataServiceVersion: 3.0",
        "Accept: application/json",
      );
      // An update needs the row (any version, or the one read); an upsert writes it either way.
      if (action[0] === "update") lines.push(`If-Match: ${action[3]?.etag ?? "*"}`);
      lines.push("", "", entityJson(action[1]));
      break;
    }
    case "delete":
      lines.push(`DELETE ${entityUrl(tableUrl, action[1])} HTTP/1.1`, "Accept: application/json;odata=minimalmetadata", "DataServiceVersion: 3.0");
      lines.push("If-Match: *", "", "");
      break;
  }
  return lines.join(lineEnding);
}

/** `table(PartitionKey='…',RowKey='…')`: quotes doubled, then percent-encoded (as the SDK renders a key). */
function entityUrl(tableUrl: string, keys: Keys): string {
  const key = (value: string) => encodeURIComponent(value.replace(/'/g, "''"));
  return `${tableUrl}(PartitionKey='${key(keys.partitionKey)}',RowKey='${key(keys.rowKey)}')`;
}

/** The entity as the service takes it: PartitionKey and RowKey by those names; strings, numbers and booleans as they are. */
function entityJson(entity: Entity): string {
  const { partitionKey, rowKey, ...properties } = entity as Keys & Record<string, unknown>;
  const body: Record<string, unknown> = { PartitionKey: partitionKey, RowKey: rowKey };
  for (const name in properties) {
    const value = properties[name];
    // The ETag, timestamp and OData annotations belong to the service, not to the entity's columns.
    if (value === undefined || name === "etag" || name === "timestamp" || name.startsWith("odata.")) continue;
    // Other types need an @odata.type annotation; no table of this service stores one.
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean" && value !== null)
      throw new TypeError(`Property ${name} (${typeof value}) is not stored: a transaction stores strings, numbers and booleans.`);
    // JSON has no NaN or infinity: it would be written as null.
    if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError(`Property ${name} (${value}) is not a finite number.`);
    body[name] = value;
  }
  return JSON.stringify(body);
}

function batchError(text: string, statusCode: number, request: PipelineRequest, response: PipelineResponse): RestError {
  let code: string | undefined;
  let message = "Transaction failed";
  const json = /\{.*\}/s.exec(text)?.[0];
  try {
    const error = (JSON.parse(json ?? "{}") as { "odata.error"?: { code?: string; message?: { value?: string } } })["odata.error"];
    code = error?.code;
    message = error?.message?.value ?? message;
  } catch {
    // Not JSON: the status says enough.
  }
  return new RestError(message, { statusCode, request, response, ...(code !== undefined && { code }) });
}
