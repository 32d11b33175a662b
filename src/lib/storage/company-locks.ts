import type { TableClient } from "@azure/data-tables";
import { getRow, storageStatus } from "./table-storage";

/**
 * A short lock per company and purpose (installing the default setup, creating one sales order): true when
 * this caller got it. An expired lock (its holder crashed) is taken over.
 */
export async function tryLock(table: TableClient, company: string, purpose: string, owner: string, ttlMs: number): Promise<boolean> {
  const expiresAt = new Date(Date.now() + ttlMs).toISOString();
  try {
    await table.createEntity({ partitionKey: company, rowKey: purpose, owner, expiresAt });
    return true;
  } catch (error) {
    if (storageStatus(error) !== 409) throw error;
  }
  const existing = await getRow<Record<string, unknown>>(table, company, purpose);
  if (existing && String(existing.expiresAt) > new Date().toISOString()) return false;
  try {
    if (existing) await table.updateEntity({ partitionKey: company, rowKey: purpose, owner, expiresAt }, "Replace", { etag: existing.etag });
    else await table.createEntity({ partitionKey: company, rowKey: purpose, owner, expiresAt });
    return true;
  } catch (error) {
    const status = storageStatus(error);
    if (status === 412 || status === 409) return false;
    throw error;
  }
}

export async function unlock(table: TableClient, company: string, purpose: string, owner: string): Promise<void> {
  const existing = await getRow<Record<string, unknown>>(table, company, purpose);
  if (existing?.owner === owner) await table.deleteEntity(company, purpose, { etag: existing.etag }).catch(() => undefined);
}
