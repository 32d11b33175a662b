import type { TableClient, TableTransaction } from "@azure/data-tables";

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

/** Splits entity-group actions into transactions: one partition each, at most 100 actions. */
export function transactionsOf<T extends readonly [string, { partitionKey: string }, ...unknown[]]>(actions: readonly T[]): T[][] {
  const byPartition = new Map<string, T[]>();
  for (const action of actions) {
    const list = byPartition.get(action[1].partitionKey) ?? [];
    list.push(action);
    byPartition.set(action[1].partitionKey, list);
  }
  const transactions: T[][] = [];
  for (const list of byPartition.values()) {
    for (let start = 0; start < list.length; start += 100) transactions.push(list.slice(start, start + 100));
  }
  return transactions;
}

type EntityAction = readonly [string, { partitionKey: string; rowKey?: string }, ...unknown[]];

/** Submits actions as entity-group transactions; partitions are independent, so they go out together. */
export async function submitTransactions(table: TableClient, actions: readonly EntityAction[]): Promise<void> {
  await Promise.all(transactionsOf(actions).map((transaction) => table.submitTransaction(transaction as unknown as TableTransaction["actions"])));
}

/** Deletes every row the filter selects (e.g. all partitions of one company), in transactions. */
export async function deleteWhere(table: TableClient, filter: string): Promise<void> {
  const keys: EntityAction[] = [];
  for await (const row of table.listEntities({ queryOptions: { filter, select: ["PartitionKey", "RowKey"] } })) {
    keys.push(["delete", { partitionKey: String(row.partitionKey), rowKey: String(row.rowKey) }] as const);
  }
  await submitTransactions(table, keys);
}

/** Every partition of a base, one per bucket. */
export function bucketPartitions(base: string): string[] {
  return Array.from({ length: bucketCount }, (_, bucket) => `${base}~${bucket.toString(16).padStart(2, "0")}`);
}
