import { describe, expect, it } from "vitest";
import { crmIdFor } from "../../src/lib/model/crm-ids";

describe("the CRM id of a new row", () => {
  it("is a version 5 UUID of the company, mapping and ERP id: the same for a rerun, another for anything else", () => {
    const id = crmIdFor("cronus", "CUSTOMER", "10000");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(crmIdFor("cronus", "CUSTOMER", "10000")).toBe(id);
    const others = [
      crmIdFor("fabrikam", "CUSTOMER", "10000"),
      crmIdFor("cronus", "CONTACT", "10000"),
      crmIdFor("cronus", "CUSTOMER", "10001"),
      crmIdFor("cronus", "CUSTOMER", "10000", 1),
      // Names that join to the same text are still different records.
      crmIdFor("cronus~CUSTOMER", "", "10000"),
    ];
    expect(new Set([id, ...others]).size).toBe(others.length + 1);
  });
});
