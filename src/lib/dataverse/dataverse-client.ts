// Over 250 lines: one client by intent (queries, writes, bulk with its fallback, $batch, change tracking) over one send path that holds the retry
// and concurrency rules.
import { DelegateBackoff, handleWhen, retry } from "cockatiel";
import { type BatchOperation, type BatchResult, buildBatch, parseBatchResponse } from "./batch";
import { ConcurrencyLimit } from "./concurrency-limit";
import { DataverseRequestError } from "./dataverse-errors";
import { type HttpsTransport, TransportError } from "./https-transport";
import { stoppedBy } from "../cancellation";

export type Row = Record<string, unknown>;

export interface RetrySettings {
  /** Tries per request, the first included. */
  maxAttempts: number;
  /** A request gives up rather than wait longer than this in total. */
  maxWaitMs: number;
  /** First backoff for 503s and timeouts; doubles per attempt, with jitter. */
  baseDelayMs: number;
}

export interface DataverseClientInit {
  serverAddress: string;
  /** The one call the client makes of its transport: a fake in unit tests, HTTPS otherwise. */
  transport: Pick<HttpsTransport, "send">;
  getToken: () => Promise<string>;
  /** A cap on requests in flight: the client runs as many as Dataverse's x-ms-dop-hint says, up to this (and 52). */
  maxParallel?: number;
  retry?: Partial<RetrySettings>;
  timeoutMs?: number;
  /** Impersonation: act as this systemuserid (MSCRMCallerID). */
  callerId?: string;
  /** Cancellation of everything this client sends (withSignal). */
  signal?: AbortSignal;
}

export interface QueryOptions {
  select?: string[];
  filter?: string;
  orderBy?: string;
  top?: number;
  /** Rows per page (Prefer: odata.maxpagesize), at most 5000. */
  pageSize?: number;
}

export interface ClientStats {
  requests: number;
  throttled: number;
  retries: number;
}

/** Logical names for @odata.type in bulk messages. */
const logicalNames: Record<string, string> = {
  accounts: "account",
  contacts: "contact",
  systemusers: "systemuser",
  transactioncurrencies: "transactioncurrency",
  uomschedules: "uomschedule",
  products: "product",
  pricelevels: "pricelevel",
  invoices: "invoice",
  salesorders: "salesorder",
  salesorderdetails: "salesorderdetail",
  invoicedetails: "invoicedetail",
  productpricelevels: "productpricelevel",
  uoms: "uom",
  organizations: "organization",
  nav_connections: "nav_connection",
  nav_accountstatisticses: "nav_accountstatistics",
};

/** Primary keys where the entity set's name does not give it (`<logical name>id`). */
function primaryKeyOf(entitySet: string): string {
  return `${logicalNames[entitySet] ?? entitySet.replace(/s$/, "")}id`;
}

const apiVersionPath = "/api/data/v9.2";
/** Dataverse's limit of operations in one $batch. */
const maxBatchOperations = 1000;
const idsPerRequest = 100;
const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const defaultRetry: RetrySettings = { maxAttempts: 8, maxWaitMs: 120_000, baseDelayMs: 500 };
const dataverseMaxParallel = 52;
/** Requests at once before Dataverse's first answer carries its x-ms-dop-hint (or on a server that sends none). */
const parallelBeforeHint = 4;

/**
 * The Dataverse Web API by intent (whoAmI, retrieveMultiple, upsertMultiple, ...), with service protection
 * handled: 429 waits for Retry-After, 502/503/504 and timeouts back off, concurrency follows x-ms-dop-hint.
 */
export class DataverseClient {
  readonly apiRoot: string;
  readonly stats: ClientStats;
  private readonly limit: ConcurrencyLimit;
  private readonly retrySettings: RetrySettings;
  private readonly withoutBulk: Set<string>;

  constructor(
    private readonly init: DataverseClientInit,
    shared?: { limit: ConcurrencyLimit; stats: ClientStats; withoutBulk: Set<string> },
  ) {
    this.withoutBulk = shared?.withoutBulk ?? new Set();
    this.apiRoot = `${init.serverAddress}${apiVersionPath}`;
    this.retrySettings = { ...defaultRetry, ...init.retry };
    // Until Dataverse's first answer says how many at once (x-ms-dop-hint), a few.
    this.limit = shared?.limit ?? new ConcurrencyLimit(Math.min(init.maxParallel ?? dataverseMaxParallel, parallelBeforeHint, dataverseMaxParallel));
    this.stats = shared?.stats ?? { requests: 0, throttled: 0, retries: 0 };
  }

  /**
   * The same connection, with every request (and every wait between retries) stopped when the signal fires:
   * how a run's cancellation reaches the transport, as the Azure SDK's `abortSignal` option does per call.
   */
  withSignal(signal: AbortSignal): DataverseClient {
    return new DataverseClient({ ...this.init, signal }, { limit: this.limit, stats: this.stats, withoutBulk: this.withoutBulk });
  }

  /** The same connection acting on behalf of another CRM user (needs prvActOnBehalfOfAnotherUser). */
  impersonate(systemUserId: string): DataverseClient {
    return new DataverseClient({ ...this.init, callerId: systemUserId }, { limit: this.limit, stats: this.stats, withoutBulk: this.withoutBulk });
  }

  get parallelism(): number {
    return this.limit.current;
  }

  whoAmI(): Promise<{ UserId: string; BusinessUnitId: string; OrganizationId: string }> {
    return this.json("GET", "WhoAmI");
  }

  async retrieveVersion(): Promise<string> {
    return (await this.json<{ Version: string }>("GET", "RetrieveVersion")).Version;
  }

  retrieve<T extends Row = Row>(entitySet: string, id: string, select?: string[]): Promise<T> {
    return this.json("GET", `${entitySet}(${id})${select ? `?$select=${select.join(",")}` : ""}`);
  }

  /** Pages of rows, following @odata.nextLink. */
  async *retrievePages<T extends Row = Row>(entitySet: string, options: QueryOptions = {}): AsyncGenerator<T[]> {
    const query = new URLSearchParams();
    if (options.select) query.set("$select", options.select.join(","));
    if (options.filter) query.set("$filter", options.filter);
    if (options.orderBy) query.set("$orderby", options.orderBy);
    // Dataverse ignores $top when a page size is asked for: a bounded read (top) sends no Prefer and reads one page.
    if (options.top !== undefined) query.set("$top", String(options.top));
    const headers: Record<string, string> = options.top === undefined ? { Prefer: `odata.maxpagesize=${Math.min(options.pageSize ?? 5000, 5000)}` } : {};
    let next: string | undefined = `${entitySet}${query.size > 0 ? `?${query.toString().replace(/\+/g, "%20")}` : ""}`;
    while (next) {
      const page: { value: T[]; "@odata.nextLink"?: string } = await this.json("GET", next, undefined, headers);
      yield page.value;
      next = options.top === undefined ? page["@odata.nextLink"] : undefined;
    }
  }

  async retrieveMultiple<T extends Row = Row>(entitySet: string, options: QueryOptions = {}): Promise<T[]> {
    const rows: T[] = [];
    for await (const page of this.retrievePages<T>(entitySet, options)) rows.push(...page);
    return rows;
  }

  /**
   * Rows by primary key, in one request per 100 ids (an `or` of keys keeps the URL well under the limit);
   * `filter` narrows them further. Ids with no row (deleted, or filtered out) are simply not returned.
   */
  async retrieveByIds<T extends Row = Row>(entitySet: string, key: string, ids: string[], options: { select?: string[]; filter?: string } = {}): Promise<T[]> {
    const rows: T[] = [];
    const unique = [...new Set(ids.map((id) => id.toLowerCase()))].filter((id) => guidPattern.test(id));
    for (let start = 0; start < unique.length; start += idsPerRequest) {
      const keys = unique
        .slice(start, start + idsPerRequest)
        .map((id) => `${key} eq ${id}`)
        .join(" or ");
      rows.push(
        ...(await this.retrieveMultiple<T>(entitySet, {
          ...(options.select && { select: options.select }),
          filter: options.filter ? `(${options.filter}) and (${keys})` : keys,
        })),
      );
    }
    return rows;
  }

  /**
   * Change tracking: without a delta link, every row's key and a delta link; with one, the keys of rows
   * changed and deleted since. Deletions are how coupled rows removed in Dynamics 365 are found in bulk.
   */
  async trackChanges(
    entitySet: string,
    key: string,
    deltaLink?: string,
  ): Promise<{ present: string[]; deleted: string[]; deltaLink: string; initial: boolean }> {
    const present: string[] = [];
    const deleted: string[] = [];
    let next: string | undefined = deltaLink ?? `${entitySet}?$select=${key}`;
    for (;;) {
      const page: { value: Row[]; "@odata.nextLink"?: string; "@odata.deltaLink"?: string } = await this.json("GET", next, undefined, {
        Prefer: "odata.track-changes, odata.maxpagesize=5000",
      });
      for (const entry of page.value) {
        if (typeof entry["@odata.context"] === "string" && String(entry["@odata.context"]).endsWith("$deletedEntity"))
          deleted.push(String(entry.id).toLowerCase());
        else if (entry[key] !== undefined) present.push(String(entry[key]).toLowerCase());
      }
      if (page["@odata.nextLink"]) next = page["@odata.nextLink"];
      else if (page["@odata.deltaLink"]) return { present, deleted, deltaLink: page["@odata.deltaLink"], initial: deltaLink === undefined };
      else throw new DataverseRequestError(500, "no-delta-link", `Dynamics 365 answered a change-tracking query on ${entitySet} without a delta link.`);
    }
  }

  /**
   * One page of rows and the paging cookie of the next ($skiptoken), for a caller that pages on later. The
   * query is always the caller's own: only the cookie comes back from outside, so a token cannot change
   * what is read.
   */
  async retrievePage<T extends Row = Row>(entitySet: string, options: QueryOptions, skipToken?: string): Promise<{ rows: T[]; skipToken?: string }> {
    const pageSize = Math.min(options.pageSize ?? 50, 5000);
    const query = new URLSearchParams();
    if (options.select) query.set("$select", options.select.join(","));
    if (options.filter) query.set("$filter", options.filter);
    if (options.orderBy) query.set("$orderby", options.orderBy);
    if (skipToken) query.set("$skiptoken", skipToken);
    const path = `${entitySet}${query.size > 0 ? `?${query.toString().replace(/\+/g, "%20")}` : ""}`;
    const page: { value: T[]; "@odata.nextLink"?: string } = await this.json("GET", path, undefined, { Prefer: `odata.maxpagesize=${pageSize}` });
    const next = page["@odata.nextLink"] ? (new URL(page["@odata.nextLink"]).searchParams.get("$skiptoken") ?? undefined) : undefined;
    return { rows: page.value, ...(next && { skipToken: next }) };
  }

  /** An unbound action (POST /{action}), e.g. FulfillSalesOrder. */
  async action<T = unknown>(name: string, parameters: Row): Promise<T | undefined> {
    return this.json<T>("POST", name, parameters);
  }

  /** Creates a row; give the primary key in `row` to choose the id (idempotent retries). */
  async create(entitySet: string, row: Row): Promise<string> {
    const response = await this.send("POST", entitySet, row);
    return idFromEntityId(response.headers["odata-entityid"]);
  }

  /** Updates an existing row only (If-Match: * unless an ETag is given); 404 when it is gone. */
  async update(entitySet: string, id: string, changes: Row, etag = "*"): Promise<void> {
    await this.send("PATCH", `${entitySet}(${id})`, changes, { "If-Match": etag });
  }

  /** Creates or updates the row with this id. */
  async upsert(entitySet: string, id: string, row: Row): Promise<void> {
    await this.send("PATCH", `${entitySet}(${id})`, row);
  }

  async delete(entitySet: string, id: string): Promise<void> {
    await this.send("DELETE", `${entitySet}(${id})`);
  }

  /** Bulk messages: one request, many rows of one table (Microsoft's fastest documented write path). */
  async createMultiple(entitySet: string, rows: Row[]): Promise<string[]> {
    return (await this.json<{ Ids: string[] }>("POST", `${entitySet}/Microsoft.Dynamics.CRM.CreateMultiple`, { Targets: this.targets(entitySet, rows) })).Ids;
  }

  /** Updates existing rows (each with its primary key); all or nothing. */
  async updateMultiple(entitySet: string, rows: Row[]): Promise<void> {
    await this.bulkOrBatch(entitySet, "UpdateMultiple", rows);
  }

  /** Creates or updates each row by its primary key (or an `@odata.id` alternate key); Dataverse answers 204, no ids. */
  async upsertMultiple(entitySet: string, rows: Row[]): Promise<void> {
    await this.bulkOrBatch(entitySet, "UpsertMultiple", rows);
  }

  /**
   * Not every table has the bulk messages (their SDK message filters exist per table). Where one is missing,
   * Dataverse answers 404 for the action; the same rows then go as one $batch change set (also all or nothing),
   * and the table is remembered so later calls go there directly.
   */
  private async bulkOrBatch(entitySet: string, message: "UpdateMultiple" | "UpsertMultiple", rows: Row[]): Promise<void> {
    if (!this.withoutBulk.has(entitySet)) {
      try {
        await this.send("POST", `${entitySet}/Microsoft.Dynamics.CRM.${message}`, { Targets: this.targets(entitySet, rows) });
        return;
      } catch (error) {
        if (!(error instanceof DataverseRequestError && error.status === 404 && error.message.includes(`'Microsoft.Dynamics.CRM.${message}'`))) throw error;
        this.withoutBulk.add(entitySet);
      }
    }
    const key = primaryKeyOf(entitySet);
    for (let start = 0; start < rows.length; start += maxBatchOperations) {
      const operations = rows.slice(start, start + maxBatchOperations).map((row): BatchOperation => {
        const { [key]: id, ...values } = row;
        if (typeof id !== "string") throw new Error(`${message} needs ${key} on every row.`);
        return { method: "PATCH", path: `${entitySet}(${id})`, body: values, ...(message === "UpdateMultiple" && { headers: { "If-Match": "*" } }) };
      });
      const failed = (await this.batch(operations, true)).find((result) => result.status >= 400);
      if (failed) {
        const error = (failed.body as { error?: { code?: string; message?: string } } | undefined)?.error;
        throw new DataverseRequestError(
          failed.status,
          error?.code ?? String(failed.status),
          error?.message ?? `A $batch operation failed with ${failed.status}.`,
        );
      }
    }
  }

  /**
   * $batch: writes in one change set when `atomic` (all or nothing). A batch stopped by a failing part
   * answers 400 with that part inside; it is returned like any other result, not thrown.
   */
  async batch(operations: BatchOperation[], atomic = true): Promise<BatchResult[]> {
    const { contentType, body } = buildBatch(this.apiRoot, operations, atomic);
    try {
      const response = await this.send("$batch", "$batch", body, { "Content-Type": contentType });
      return parseBatchResponse(response.headers["content-type"] ?? "", response.text);
    } catch (error) {
      if (error instanceof DataverseRequestError && error.batchResponse) return parseBatchResponse(error.batchResponse.contentType, error.batchResponse.text);
      throw error;
    }
  }

  /** Finds the tenant from the organization's 401 challenge (authorization_uri). */
  static async discoverTenant(transport: HttpsTransport, serverAddress: string): Promise<string | undefined> {
    const response = await transport.send({ method: "GET", url: `${serverAddress}${apiVersionPath}/`, timeoutMs: 15_000 });
    const challenge = response.headers["www-authenticate"] ?? "";
    const uri = /authorization_uri="?([^",\s]+)/i.exec(challenge)?.[1];
    if (!uri) return undefined;
    return new URL(uri).pathname.split("/").filter(Boolean)[0];
  }

  private targets(entitySet: string, rows: Row[]): Row[] {
    const logicalName = logicalNames[entitySet] ?? entitySet.replace(/s$/, "");
    return rows.map((row) => ({ "@odata.type": `Microsoft.Dynamics.CRM.${logicalName}`, ...row }));
  }

  private async json<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const response = await this.send(method, path, body, headers);
    return (response.text ? JSON.parse(response.text) : undefined) as T;
  }

  private async send(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: Record<string, string>; text: string }> {
    let waited = 0;
    const backoff = new DelegateBackoff<{ attempt: number; result: { error: Error } | { value: unknown } }>((context) => {
      const error = "error" in context.result ? context.result.error : undefined;
      const delay =
        error instanceof DataverseRequestError && error.retryAfterMs !== undefined
          ? error.retryAfterMs
          : Math.min(this.retrySettings.baseDelayMs * 2 ** (context.attempt - 1), 30_000) * (0.75 + Math.random() * 0.5);
      waited += delay;
      return delay;
    });
    const policy = retry(
      handleWhen((error) => isTransient(error) && waited + expectedWait(error, this.retrySettings.baseDelayMs) <= this.retrySettings.maxWaitMs),
      { maxAttempts: this.retrySettings.maxAttempts - 1, backoff },
    );
    policy.onRetry(() => this.stats.retries++);
    const { signal } = this.init;
    if (!signal) return policy.execute(() => this.limit.run(() => this.sendOnce(method, path, body, headers)));
    if (signal.aborted) throw stoppedBy(signal);
    const attempts = policy.execute(() => this.limit.run(() => this.sendOnce(method, path, body, headers)), signal);
    // A cancellation does not wait out a Retry-After: the caller hears at once (the policy then stops retrying).
    return new Promise((resolve, reject) => {
      const stop = () => reject(stoppedBy(signal));
      signal.addEventListener("abort", stop, { once: true });
      attempts.then(resolve, (error: unknown) => reject(signal.aborted ? stoppedBy(signal) : error)).finally(() => signal.removeEventListener("abort", stop));
    });
  }

  private async sendOnce(method: string, path: string, body: unknown, headers: Record<string, string>) {
    const token = await this.init.getToken();
    const isBatch = method === "$batch";
    const url = path.startsWith("https://") ? path : `${this.apiRoot}/${path}`;
    this.stats.requests++;
    const response = await this.init.transport.send({
      method: isBatch ? "POST" : method,
      url,
      timeoutMs: this.init.timeoutMs ?? 120_000,
      ...(this.init.signal && { signal: this.init.signal }),
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        ...(body !== undefined && !isBatch && { "Content-Type": "application/json; charset=utf-8" }),
        ...(this.init.callerId && { MSCRMCallerID: this.init.callerId }),
        ...headers,
      },
      ...(body !== undefined && { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const hint = Number(response.headers["x-ms-dop-hint"]);
    if (Number.isInteger(hint) && hint > 0) this.limit.setCeiling(Math.min(this.init.maxParallel ?? dataverseMaxParallel, hint, dataverseMaxParallel));
    const text = response.body.toString("utf8");
    if (response.status >= 400) {
      const error = errorFrom(response.status, text, response.headers["retry-after"]);
      if (response.status === 429) {
        this.stats.throttled++;
        this.limit.throttled(error.code);
      }
      if (isBatch && /^multipart\/mixed/i.test(response.headers["content-type"] ?? ""))
        error.batchResponse = { contentType: response.headers["content-type"]!, text };
      throw error;
    }
    if (response.status >= 300)
      throw new DataverseRequestError(response.status, "redirect", `Dynamics 365 answered with a redirect (${response.status}), which is not followed.`);
    this.limit.succeeded();
    return { status: response.status, headers: response.headers, text };
  }
}

function errorFrom(status: number, text: string, retryAfter: string | undefined): DataverseRequestError {
  let code = String(status);
  let message = text.slice(0, 500) || `HTTP ${status}`;
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (parsed.error) {
      code = parsed.error.code ?? code;
      message = parsed.error.message ?? message;
    }
  } catch {
    // not JSON: keep the text
  }
  const seconds = retryAfter === undefined ? undefined : Number(retryAfter);
  const retryAfterMs = seconds !== undefined && Number.isFinite(seconds) ? seconds * 1000 : status === 429 ? 5000 : undefined;
  return new DataverseRequestError(status, code, message, retryAfterMs);
}

/** 429s, 502/503/504 and timeouts or dropped connections are worth another try; nothing else is. */
function isTransient(error: Error): boolean {
  if (error instanceof DataverseRequestError) return [429, 502, 503, 504].includes(error.status);
  if (error instanceof TransportError)
    return error.kind === "timeout" || (error.kind === "connection" && /ECONNRESET|EPIPE|socket hang up/i.test(`${error.code} ${error.message}`));
  return false;
}

function expectedWait(error: Error, baseDelayMs: number): number {
  return error instanceof DataverseRequestError && error.retryAfterMs !== undefined ? error.retryAfterMs : baseDelayMs;
}

function idFromEntityId(entityId: string | undefined): string {
  const id = /\(([0-9a-fA-F-]{36})\)\s*$/.exec(entityId ?? "")?.[1];
  if (!id) throw new Error("Dynamics 365 did not return the id of the created row (OData-EntityId).");
  return id.toLowerCase();
}
