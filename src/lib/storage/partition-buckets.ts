import type { TableClient } from "@azure/data-tables";
import { type BatchAction, submitBatch } from "./entity-batch";
import { mapLimit, pointReadParallelism } from "../map-limit";
import { isStorableKey, storageStatus, unlessStatus } from "./table-storage";

/**
 * Large per-company sets (ERP records, couplings) are spread over a fixed number of partitions chosen by a
 * stable hash of the id: Azure Tables targets about 2,000 entities/s per partition, and Azurite's lookups
 * scan a partition linearly. Readers query the range of all buckets; writers group a batch by bucket,
 * since an entity-group transaction stays within one partition.
 */
export const bucketCount = 16;

export function bucketOf(id: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < id.length; index++) {
    hash ^= id.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return (hash % bucketCount).toString(16).padStart(2, "0");
}

/** `base~<bucket>` for an id; all of a base's partitions sort between `base~` and `base~~`. */
export function bucketedPartition(base: string, id: string): string {
  return `${base}~${bucketOf(id)}`;
}

export function bucketRangeFilter(base: string): string {
  const escaped = base.replace(/'/g, "''");
  return `PartitionKey ge '${escaped}~' and PartitionKey lt '${escaped}~~'`;
}

type EntityAction = readonly [string, { partitionKey: string; rowKey?: string }, ...unknown[]];

/** An entity-group transaction holds at most 100 actions and 4 MiB of payload (kept to 3 MiB: the framing adds some). */
const maxActionsPerTransaction = 100;
const maxTransactionBytes = 3 * 1024 * 1024;

/**
 * Splits groups of actions into entity-group transactions within Azure's limits: one partition each, and a
 * group (an ERP record with its change row) never split across two.
 */
export function transactionsOf<G extends readonly EntityAction[]>(groups: readonly G[]): G[][] {
  const byPartition = new Map<string, G[]>();
  for (const group of groups) {
    const partition = group[0]![1].partitionKey;
    const list = byPartition.get(partition) ?? [];
    list.push(group);
    byPartition.set(partition, list);
  }
  const transactions: G[][] = [];
  for (const list of byPartition.values()) {
    let current: G[] = [];
    let actions = 0;
    let bytes = 0;
    for (const group of list) {
      const size = group.reduce((sum, action) => sum + payloadBytes(action[1]), 0);
      if (current.length > 0 && (actions + group.length > maxActionsPerTransaction || bytes + size > maxTransactionBytes)) {
        transactions.push(current);
        current = [];
        actions = 0;
        bytes = 0;
      }
      current.push(group);
      actions += group.length;
      bytes += size;
    }
    if (current.length > 0) transactions.push(current);
  }
  return transactions;
}

/** An entity's share of a transaction's payload: its strings as UTF-8, and room for names, types and headers. */
function payloadBytes(entity: object): number {
  let bytes = 512;
  for (const value of Object.values(entity)) bytes += 64 + (typeof value === "string" ? Buffer.byteLength(value) : 0);
  return bytes;
}

/**
 * Submits actions as entity-group transactions; partitions are independent, so they go out together. A refused
 * transaction is sent again as `resend` makes it from its actions and the status it got, when it makes one.
 */
export async function submitTransactions(
  table: TableClient,
  actions: readonly BatchAction[],
  resend: (transaction: BatchAction[], status: number | undefined) => BatchAction[] | undefined = () => undefined,
): Promise<void> {
  await Promise.all(
    transactionsOf(actions.map((action) => [action])).map(async (groups) => {
      const transaction = groups.flat();
      try {
        await submitBatch(table, transaction);
      } catch (error) {
        const again = resend(transaction, storageStatus(error));
        if (!again) throw error;
        await submitBatch(table, again);
      }
    }),
  );
}

/** Deletes every row the filter selects (e.g. all partitions of one company), in transactions. */
export async function deleteWhere(table: TableClient, filter: string): Promise<void> {
  const keys: BatchAction[] = [];
  for await (const row of table.listEntities({ queryOptions: { filter, select: ["PartitionKey", "RowKey"] } })) {
    keys.push(["delete", { partitionKey: String(row.partitionKey), rowKey: String(row.rowKey) }] as const);
  }
  await submitTransactions(table, keys);
}

/** Every partition of a base, one per bucket. */
export function bucketPartitions(base: string): string[] {
  return Array.from({ length: bucketCount }, (_, bucket) => `${base}~${bucket.toString(16).padStart(2, "0")}`);
}

/**
 * Deletes rows in transactions; one already gone (another run or reader met it first) fails its transaction,
 * whose rows are then deleted one by one.
 */
export async function deleteRows(table: TableClient, keys: readonly { partitionKey: string; rowKey: string }[]): Promise<void> {
  const deletes = keys.map((key) => [["delete", key] as const]);
  await mapLimit(transactionsOf(deletes), pointReadParallelism, async (transaction) => {
    try {
      await submitBatch(table, transaction.flat());
    } catch (error) {
      if (storageStatus(error) !== 404) throw error;
      for (const [, key] of transaction.flat()) await table.deleteEntity(key.partitionKey, key.rowKey).catch(unlessStatus(404));
    }
  });
}

/**
 * Rows by their keys, a few row keys per query of one partition: Azure Tables takes at most 15 comparisons in a
 * filter, so 14 row keys and the partition key. Far fewer requests than point reads for a wave's records, and
 * reads that follow the number of keys, not the size of the table. Keys storage refuses name no row.
 */
export async function rowsByKeys(table: TableClient, keys: { partitionKey: string; rowKey: string }[]): Promise<Record<string, unknown>[]> {
  const byPartition = new Map<string, Set<string>>();
  for (const { partitionKey, rowKey } of keys) {
    if (!isStorableKey(partitionKey) || !isStorableKey(rowKey)) continue;
    byPartition.set(partitionKey, (byPartition.get(partitionKey) ?? new Set()).add(rowKey));
  }
  const queries: string[] = [];
  const quote = (value: string) => `'${value.replace(/'/g, "''")}'`;
  for (const [partitionKey, rowKeys] of byPartition) {
    const list = [...rowKeys];
    for (let start = 0; start < list.length; start += keysPerQuery)
      queries.push(
        `PartitionKey eq ${quote(partitionKey)} and (${list
          .slice(start, start + keysPerQuery)
          .map((rowKey) => `RowKey eq ${quote(rowKey)}`)
          .join(" or ")})`,
      );
  }
  const rows: Record<string, unknown>[] = [];
  await mapLimit(queries, pointReadParallelism, async (filter) => {
    for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) rows.push(row);
  });
  return rows;
}

const keysPerQuery = 14;
