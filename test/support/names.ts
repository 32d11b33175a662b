import { randomBytes } from "node:crypto";

/** A company slug no other test uses, so tests share one Azurite without seeing each other's rows. */
export function uniqueCompany(prefix = "co"): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}
