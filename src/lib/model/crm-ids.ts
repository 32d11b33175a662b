// The CRM id of a row the synchronization creates, derived from what it stands for.
import { createHash } from "node:crypto";

/** This service's namespace for name-based UUIDs (RFC 9562, version 5); any fixed UUID would do, this one is ours. */
const namespace = Buffer.from("7d1c2f8e4b5a4e6f9a3b0c1d2e3f4a5b", "hex");

/**
 * The id a new CRM row gets for an ERP record: a name-based UUID (version 5) of the company, the mapping and
 * the ERP id. A rerun can only write the same row, even when the coupling store lost its last seconds (a
 * crash before the wave's manifest reached the disk), and two companies or mappings never share one. `attempt`
 * picks the next id when an admin coupled this id's row to another record.
 */
export function crmIdFor(company: string, mapping: string, erpId: string, attempt = 0): string {
  const name = JSON.stringify(attempt === 0 ? [company, mapping, erpId] : [company, mapping, erpId, attempt]);
  const bytes = createHash("sha1").update(namespace).update(name, "utf8").digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
