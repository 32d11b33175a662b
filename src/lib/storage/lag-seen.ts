import type { TableClient } from "@azure/data-tables";
import { getRow } from "./table-storage";

/**
 * What a run read again within the watermark lag and already processed (`id@stamp` per side), kept in its own
 * row so the mapping row stays small. A bulk load can leave thousands of entries in the lag window: the lists
 * are spread over string properties (64 KiB each, 1 MiB per entity); beyond that the oldest entries are dropped,
 * which only means they are processed again.
 */
export interface LagSeen {
  erp: string[];
  crm: string[];
}

const charsPerProperty = 30_000;
/** Azure stores strings as UTF-16: 480,000 characters are 960,000 bytes, under the 1 MiB an entity may hold. */
export const lagSeenMaxChars = 480_000;

export async function readLagSeen(table: TableClient, company: string, mapping: string): Promise<LagSeen> {
  const row = await getRow<Record<string, unknown>>(table, company, rowKeyOf(mapping));
  return { erp: listOf(row, "erp"), crm: listOf(row, "crm") };
}

export async function writeLagSeen(table: TableClient, company: string, mapping: string, seen: LagSeen): Promise<void> {
  const erp = fitting(seen.erp, lagSeenMaxChars / 2);
  const crm = fitting(seen.crm, lagSeenMaxChars - erp.join("\n").length);
  const entity: Record<string, unknown> & { partitionKey: string; rowKey: string } = { partitionKey: company, rowKey: rowKeyOf(mapping) };
  Object.assign(entity, properties("erp", erp), properties("crm", crm));
  await table.upsertEntity(entity, "Replace");
}

function rowKeyOf(mapping: string): string {
  return mapping.replace(/[/\\#?]/g, "_");
}

/** The newest entries (the list is in feed order) whose text fits the budget. */
function fitting(entries: string[], budget: number): string[] {
  let used = 0;
  let start = entries.length;
  while (start > 0 && used + entries[start - 1]!.length + 1 <= budget) used += entries[--start]!.length + 1;
  return entries.slice(start);
}

function properties(side: string, entries: string[]): Record<string, string> {
  const text = entries.join("\n");
  const result: Record<string, string> = {};
  for (let part = 0; part * charsPerProperty < text.length; part++)
    result[`${side}${part}`] = text.slice(part * charsPerProperty, (part + 1) * charsPerProperty);
  return result;
}

function listOf(row: Record<string, unknown> | undefined, side: string): string[] {
  if (!row) return [];
  let text = "";
  for (let part = 0; typeof row[`${side}${part}`] === "string"; part++) text += row[`${side}${part}`] as string;
  return text === "" ? [] : text.split("\n");
}
