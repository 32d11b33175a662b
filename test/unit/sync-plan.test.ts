import { describe, expect, it } from "vitest";
import type { Coupling } from "../../src/lib/sync/coupling";
import { defaultMappings } from "../../src/lib/sync/default-mappings";
import { type ErpChange, crmValues, erpIdFor, hashOf, planFromCrm, planToCrm, syncMessages } from "../../src/lib/sync/sync-plan";

const customer = defaultMappings.find((mapping) => mapping.name === "CUSTOMER")!;
const salespeople = defaultMappings.find((mapping) => mapping.name === "SALESPEOPLE")!;
const contact = defaultMappings.find((mapping) => mapping.name === "CONTACT")!;

const change = (id: string, fields: Record<string, unknown>, modifiedAt = "2026-11-26T10:00:00.000Z-000001", extra: Partial<ErpChange> = {}): ErpChange => ({
  id,
  fields: { id, ...fields },
  modifiedAt,
  modifiedBy: "erp",
  deleted: false,
  ...extra,
});
let ids = 0;
const newId = () => `00000000-0000-4000-8000-${String(++ids).padStart(12, "0")}`;
const toCrm = (changes: ErpChange[], couplings: Coupling[] = [], crmChanged = new Map<string, string>(), lookups = {}) =>
  planToCrm({ mapping: customer, changes, couplings: new Map(couplings.map((coupling) => [coupling.erpId, coupling])), lookups, crmChanged, includeUncoupled: false, newId });

describe("planning ERP -> CRM", () => {
  it("creates uncoupled records with a pre-chosen id and the mapping's defaults", () => {
    const plan = toCrm([change("C1", { name: "Contoso", city: "Oslo" })]);
    expect(plan.writes).toHaveLength(1);
    expect(plan.writes[0]).toMatchObject({ erpId: "C1", create: true, row: { customertypecode: 3, name: "Contoso", address1_city: "Oslo" } });
    expect(plan.writes[0]!.row.accountid).toBe(plan.writes[0]!.crmId);
  });

  it("updates coupled records and leaves unchanged ones alone", () => {
    const values = crmValues(customer, { id: "C1", name: "Contoso" }, {}, false);
    const coupled: Coupling = { erpId: "C1", crmId: "a-1", pending: false, crmHash: hashOf(values) };
    expect(toCrm([change("C1", { name: "Contoso" })], [coupled])).toMatchObject({ writes: [], unchanged: [{ erpId: "C1" }] });
    expect(toCrm([change("C1", { name: "Contoso Ltd" })], [coupled]).writes[0]).toMatchObject({ create: false, crmId: "a-1", row: { accountid: "a-1", name: "Contoso Ltd" } });
  });

  it("retries a pending coupling with the same id (no duplicate after a crash)", () => {
    const plan = toCrm([change("C1", { name: "Contoso" })], [{ erpId: "C1", crmId: "chosen-id", pending: true }]);
    expect(plan.writes[0]).toMatchObject({ create: true, crmId: "chosen-id" });
  });

  it("fails the record when CRM changed it later than the ERP did (bidirectional conflict)", () => {
    const coupled: Coupling = { erpId: "C1", crmId: "a-1", pending: false };
    const plan = toCrm([change("C1", { name: "ERP edit" }, "2026-11-26T10:00:00.000Z-000001")], [coupled], new Map([["a-1", "2026-11-26T10:05:00.000Z"]]));
    expect(plan.failed).toEqual([{ sourceId: "C1", destinationId: "a-1", reason: syncMessages.crmNewer("accounts", "customers") }]);
    const erpNewer = toCrm([change("C1", { name: "ERP edit" }, "2026-11-26T10:09:00.000Z-000001")], [coupled], new Map([["a-1", "2026-11-26T10:05:00.000Z"]]));
    expect(erpNewer.writes).toHaveLength(1);
  });

  it("never echoes records the sync itself wrote, and removes couplings of deleted records", () => {
    const plan = toCrm(
      [change("C1", { name: "from CRM" }, undefined, { modifiedBy: "crm-sync" }), change("C2", { name: "gone" }, undefined, { deleted: true })],
      [{ erpId: "C2", crmId: "a-2", pending: false }],
    );
    expect(plan).toMatchObject({ writes: [], ownWrites: 1, deletions: ["C2"] });
  });

  it("binds lookups to coupled rows and leaves out codes that are not coupled yet", () => {
    const lookups = { SALESPEOPLE: { toCrm: new Map([["SP1", "u-1"]]), toErp: new Map() }, CURRENCY: { toCrm: new Map([["EUR", "cur-1"]]), toErp: new Map() } };
    const plan = toCrm([change("C1", { name: "x", salespersonCode: "SP1", currencyCode: "EUR", primaryContactNo: "CT9" })], [], new Map(), lookups);
    expect(plan.writes[0]!.row).toMatchObject({ "ownerid@odata.bind": "/systemusers(u-1)", "transactioncurrencyid@odata.bind": "/transactioncurrencies(cur-1)" });
    expect(plan.writes[0]!.row).not.toHaveProperty("primarycontactid@odata.bind");
  });

  it("applies the ERP filter (contacts: persons of a company)", () => {
    const plan = planToCrm({
      mapping: contact,
      changes: [change("P1", { type: "Person", surname: "A", companyNo: "C1" }), change("P2", { type: "Person", surname: "B" }), change("K1", { type: "Company", companyNo: "C1" })],
      couplings: new Map(),
      lookups: {},
      crmChanged: new Map(),
      includeUncoupled: false,
      newId,
    });
    expect(plan.writes.map((write) => write.erpId)).toEqual(["P1"]);
  });
});

describe("planning CRM -> ERP", () => {
  const validate = (fields: Record<string, unknown>) =>
    typeof fields.name === "string" && fields.name.length > 0 ? ({ ok: true, fields: fields as never } as const) : ({ ok: false, reason: "name: is required" } as const);
  const fromCrm = (rows: Record<string, unknown>[], couplings: Coupling[], erp: ErpChange[] = [], erpChanged = new Map<string, string>(), mapping = customer, includeUncoupled = false) =>
    planFromCrm({
      mapping,
      rows,
      couplingsByCrm: new Map(couplings.map((coupling) => [coupling.crmId, coupling])),
      erpRecords: new Map(erp.map((record) => [record.id, record])),
      lookups: {},
      erpChanged,
      writtenThisRun: new Set(),
      includeUncoupled,
      validate,
    });

  it("creates ERP records for new CRM rows with an id derived from the CRM id", () => {
    const plan = fromCrm([{ accountid: "0a1b2c3d-0000-4000-8000-000000000001", name: "From CRM", modifiedon: "2026-11-26T10:00:00Z" }], []);
    expect(plan.writes[0]).toMatchObject({ create: true, erpId: erpIdFor("0a1b2c3d-0000-4000-8000-000000000001"), fields: { name: "From CRM" } });
    expect(erpIdFor("0a1b2c3d-0000-4000-8000-000000000001")).toBe("CRM-0A1B2C3D00004000");
  });

  it("fails a row coupled to a deleted ERP record, and one the ERP changed later", () => {
    const coupled: Coupling = { erpId: "C1", crmId: "a-1", pending: false };
    expect(fromCrm([{ accountid: "a-1", name: "x", modifiedon: "2026-11-26T10:00:00Z" }], [coupled]).failed[0]?.reason).toBe(syncMessages.coupledToDeletedErp("customers"));
    const erp = [change("C1", { name: "ERP" }, "2026-11-26T10:30:00.000Z-000001")];
    const plan = fromCrm([{ accountid: "a-1", name: "CRM", modifiedon: "2026-11-26T10:00:00Z" }], [coupled], erp, new Map([["C1", "2026-11-26T10:30:00.000Z-000001"]]));
    expect(plan.failed[0]?.reason).toBe(syncMessages.erpNewer("customers", "accounts"));
  });

  it("skips uncoupled rows of coupled-only mappings unless it is a full synchronization", () => {
    const row = { systemuserid: "u-9", fullname: "New User", modifiedon: "2026-11-26T10:00:00Z" };
    const valid = (fields: Record<string, unknown>) => ({ ok: true, fields: fields as never }) as const;
    const skipped = planFromCrm({ mapping: salespeople, rows: [row], couplingsByCrm: new Map(), erpRecords: new Map(), lookups: {}, erpChanged: new Map(), writtenThisRun: new Set(), includeUncoupled: false, validate: valid });
    expect(skipped.skipped).toEqual([{ sourceId: "u-9", reason: syncMessages.notCoupled }]);
    const full = planFromCrm({ mapping: salespeople, rows: [row], couplingsByCrm: new Map(), erpRecords: new Map(), lookups: {}, erpChanged: new Map(), writtenThisRun: new Set(), includeUncoupled: true, validate: valid });
    expect(full.writes).toHaveLength(1);
  });

  it("counts rows whose values the ERP already has as unchanged, and skips a version already synchronized", () => {
    const coupled: Coupling = { erpId: "C1", crmId: "a-1", pending: false, crmModifiedOn: "2026-11-26T09:00:00Z" };
    const erp = [change("C1", { name: "Same" })];
    expect(fromCrm([{ accountid: "a-1", name: "Same", modifiedon: "2026-11-26T10:00:00Z" }], [coupled], erp).unchanged).toHaveLength(1);
    expect(fromCrm([{ accountid: "a-1", name: "Old", modifiedon: "2026-11-26T09:00:00Z" }], [coupled], erp)).toMatchObject({ writes: [], unchanged: [], failed: [] });
  });

  it("fails a new record the ERP schema refuses, with the reason", () => {
    expect(fromCrm([{ accountid: "a-7", name: null, modifiedon: "2026-11-26T10:00:00Z" }], []).failed[0]?.reason).toBe("name: is required");
  });
});
