import { type TableClient, TableClient as TableClientClass, TableServiceClient, type TableServiceClientOptions } from "@azure/data-tables";
import type { TokenCredential } from "@azure/identity";

export type StorageAccess = { connectionString: string } | { tableServiceUri: string; credential: TokenCredential };

/**
 * Hands out TableClients and creates each table once per process (the first use awaits the create;
 * later uses don't pay a round trip). `options.additionalPolicies` lets tests count requests.
 */
export class TableStorage {
  private readonly created = new Map<string, Promise<void>>();

  constructor(
    private readonly access: StorageAccess,
    private readonly options: TableServiceClientOptions = {},
  ) {}

  async table(name: string): Promise<TableClient> {
    const client = this.client(name);
    let creation = this.created.get(name);
    if (!creation) {
      creation = client.createTable().catch((error: unknown) => {
        this.created.delete(name);
        throw error;
      });
      this.created.set(name, creation);
    }
    await creation;
    return client;
  }

  /**
   * Reads one row of a table: a data-plane call the app's "Storage Table Data Contributor" role allows (the
   * service-level Get Table Service Properties is not granted by that role, so a probe with it fails in Azure).
   */
  async probe(timeoutMs = 5000): Promise<void> {
    const table = await this.table("syncjobs");
    await table
      .listEntities({ queryOptions: { select: ["PartitionKey"] }, abortSignal: AbortSignal.timeout(timeoutMs) })
      .byPage({ maxPageSize: 1 })
      .next();
  }

  serviceClient(): TableServiceClient {
    const options = this.clientOptions();
    return "connectionString" in this.access
      ? TableServiceClient.fromConnectionString(this.access.connectionString, options)
      : new TableServiceClient(this.access.tableServiceUri, this.access.credential, options);
  }

  private client(name: string): TableClient {
    const options = this.clientOptions();
    return "connectionString" in this.access
      ? TableClientClass.fromConnectionString(this.access.connectionString, name, options)
      : new TableClientClass(this.access.tableServiceUri, name, this.access.credential, options);
  }

  private clientOptions(): TableServiceClientOptions {
    // Azurite speaks plain HTTP on loopback; real accounts are https-only.
    const local = "connectionString" in this.access && /UseDevelopmentStorage=true|127\.0\.0\.1|localhost/i.test(this.access.connectionString);
    return { ...this.options, allowInsecureConnection: local };
  }
}

/**
 * Characters Table Storage refuses in keys (/ \ # ? and control characters): a key holding one names no row,
 * so a caller's id such as "a/b" or ".." is simply not found, rather than a request storage refuses and
 * the SDK retries for seconds.
 */
// oxlint-disable-next-line no-control-regex -- control characters are what it finds
const forbiddenInKeys = /[/\\#?\u0000-\u001f\u007f-\u009f]/;

/** Whether a row could have these keys (Table Storage's key rules). */
export function isStorableKey(key: string): boolean {
  return key.length <= 1024 && !forbiddenInKeys.test(key);
}

/** One row by its keys, or undefined when there is none (a 404 is an answer, not an error). */
export async function getRow<T extends object>(table: TableClient, partitionKey: string, rowKey: string): Promise<(T & { etag: string }) | undefined> {
  if (!isStorableKey(partitionKey) || !isStorableKey(rowKey)) return undefined;
  try {
    const row = await table.getEntity<T>(partitionKey, rowKey);
    return row as T & { etag: string };
  } catch (error) {
    if (storageStatus(error) === 404) return undefined;
    throw error;
  }
}

/** Table Storage answers 412 for a stale ETag and 409 when inserting a row that exists. */
export function storageStatus(error: unknown): number | undefined {
  return typeof error === "object" && error !== null && "statusCode" in error ? Number(error.statusCode) : undefined;
}

/** A catch handler that lets one status through (e.g. 404 for a row another writer already deleted). */
export function unlessStatus(status: number): (error: unknown) => void {
  return (error) => {
    if (storageStatus(error) !== status) throw error;
  };
}
