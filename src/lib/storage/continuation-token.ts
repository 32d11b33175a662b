import * as z from "zod";

/**
 * A continuation token Table Storage gave out (the Tables SDK's: base64 JSON naming the next partition and row
 * key). Anything else is refused as input instead of failing in storage.
 */
export const storageContinuationToken = z
  .string()
  .min(1)
  .max(2000)
  .refine((token) => {
    try {
      const decoded = JSON.parse(Buffer.from(token, "base64").toString("utf8")) as unknown;
      return typeof decoded === "object" && decoded !== null && typeof (decoded as { nextPartitionKey?: unknown }).nextPartitionKey === "string";
    } catch {
      return false;
    }
  }, "is not a continuation token this API gave out");
