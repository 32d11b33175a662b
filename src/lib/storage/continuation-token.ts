import * as z from "zod";
import { inputMessages } from "../errors";

/**
 * A continuation token Table Storage gave out (the Tables SDK's: base64 JSON naming the next partition and row
 * key, both text, in the service's own encoding). Anything else is refused as input instead of failing in
 * storage. Which partition it names is not checked: the service encodes keys its own way, and every query
 * filters on the company anyway, so a token of another listing cannot reach another company's rows.
 */
export const storageContinuationToken = z
  .string()
  .min(1)
  .max(2000)
  .refine((token) => tokenPartition(token) !== undefined, inputMessages.foreignToken);

/** The partition a storage continuation token continues in, or undefined when it is not such a token. */
export function tokenPartition(token: string): string | undefined {
  try {
    const decoded = JSON.parse(Buffer.from(token, "base64").toString("utf8")) as { nextPartitionKey?: unknown; nextRowKey?: unknown };
    if (typeof decoded !== "object" || decoded === null || typeof decoded.nextPartitionKey !== "string") return undefined;
    if (decoded.nextRowKey !== undefined && typeof decoded.nextRowKey !== "string") return undefined;
    return decoded.nextPartitionKey;
  } catch {
    return undefined;
  }
}
