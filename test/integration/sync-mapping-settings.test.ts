import { describe, expect, it } from "vitest";
import { useSyncHarness } from "../support/sync-harness";

// BC's Integration Table Mapping and Integration Field Mapping cards: what an admin changes, and what it does to runs.
const harness = useSyncHarness();
const { jane, enabledCompany, put, erp, run, couplingOf, crmRow } = harness;
const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  harness.demo.app.call(method, path, { ...(body !== undefined && { body }), ...(headers && { headers }) });
const mappingOf = async (company: string, name: string) =>
  (await call("GET", `/api/companies/${company}/sync/mappings`)).json.value.find((mapping: { name: string }) => mapping.name === name);

describe("mapping settings", () => {
  it("changes a mapping's direction and conflict setting, and the next run follows them", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} One`, city: "Oslo" }]);
    await run(company, "CUSTOMER");
    const crmId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;

    const changed = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, {
      direction: "toCrm",
      updateConflictResolution: "sendUpdateToIntegration",
    });
    expect(changed.status).toBe(200);
    expect(changed.json).toMatchObject({ name: "CUSTOMER", direction: "toCrm", updateConflictResolution: "sendUpdateToIntegration" });
    expect(await mappingOf(company, "CUSTOMER")).toMatchObject({ direction: "toCrm" });

    // A CRM edit no longer comes back to the ERP; an ERP edit still goes to CRM.
    await jane("PATCH", `accounts(${crmId})`, { body: { telephone1: "+47 1111" } });
    await put(company, "customers", [{ id: "C1", name: `${company} One`, city: "Bergen" }]);
    await run(company, "CUSTOMER");
    expect((await erp(company, "customers", "C1"))!.phoneNo).toBeUndefined();
    expect(crmRow("accounts", crmId)).toMatchObject({ address1_city: "Bergen", telephone1: "+47 1111" });
  });

  it("refuses what a mapping cannot do, naming the field and the rule, and stores nothing", async () => {
    const company = await enabledCompany();
    const before = await mappingOf(company, "SALESPEOPLE");
    const cases: [string, unknown, string][] = [
      ["SALESPEOPLE", { direction: "toCrm" }, "direction"],
      ["CUSTOMER", { direction: "sideways" }, "direction"],
      ["CUSTOMER", { updateConflictResolution: "newest" }, "updateConflictResolution"],
      ["CUSTOMER", { fields: [{ erp: "shoeSize", enabled: false }] }, "fields.0.erp"],
      ["CUSTOMER", { fields: [{ erp: "homePage", constant: "https://contoso.example" }] }, "fields.0.constant"],
      ["CUSTOMER", { fields: [{ erp: "salespersonCode", direction: "toCrm", constant: "JS" }] }, "fields.0.constant"],
      ["CUSTOMER", { erpFilter: [{ field: "shoeSize", op: "eq", value: 1 }] }, "erpFilter.0.field"],
      ["CUSTOMER", { erpFilter: [{ field: "city", op: "eq" }] }, "erpFilter.0.value"],
      ["CUSTOMER", { crmFilter: "name eq 'unclosed" }, "crmFilter"],
      ["CUSTOMER", { crmFilter: "statecode eq 0&$top=1" }, "crmFilter"],
      ["CUSTOMER", { crmFilter: "shoesize eq 1" }, "crmFilter"],
      ["CUSTOMER", { maxAttempts: 0 }, "maxAttempts"],
      ["CUSTOMER", { colour: "red" }, "colour"],
      ["SALESPEOPLE", { direction: "toCrm", onlyCoupledRecords: false }, "direction"],
      ["SALESPEOPLE", { fields: [{ erp: "name", direction: "toCrm" }] }, "fields.0.direction"],
      ["CUSTOMER", { fields: [{ erp: "name", enabled: false }] }, "fields.0.enabled"],
      [
        "CUSTOMER",
        {
          fields: [
            { erp: "email", direction: "toCrm", constant: "not-an-email" },
            { erp: "email", direction: "fromCrm" },
          ],
        },
        "fields.1.erp",
      ],
      ["CUSTOMER", { fields: [{ erp: "email", direction: "fromCrm", constant: "not-an-email" }] }, "fields.0.constant"],
      ["CUSTOMER", { erpFilter: [{ field: "countryRegionCode", op: "eq", value: 47 }] }, "erpFilter.0.value"],
      ["CUSTOMER", { erpFilter: [{ field: "blocked", op: "ne", value: "Nope" }] }, "erpFilter.0.value"],
      ["CUSTOMER", { erpFilter: [{ field: "email", op: "present", value: "x" }] }, "erpFilter.0.value"],
    ];
    for (const [mapping, body, path] of cases) {
      const refused = await call("PATCH", `/api/companies/${company}/sync/mappings/${encodeURIComponent(mapping)}`, body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.headers.get("content-type")).toContain("application/problem+json");
      expect(
        refused.json.errors.map((error: { path: string }) => error.path),
        JSON.stringify(body),
      ).toContain(path);
    }
    // Dataverse's own words say why a filter it cannot run is refused.
    const unknownColumn = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { crmFilter: "shoesize eq 1" });
    expect(unknownColumn.json.errors[0].message).toMatch(/shoesize/);
    expect(await mappingOf(company, "SALESPEOPLE")).toEqual(before);
  });

  it("is versioned with ETags: a change made on an old copy is refused with 412", async () => {
    const company = await enabledCompany();
    const first = await call("PATCH", `/api/companies/${company}/sync/mappings/CONTACT`, { maxAttempts: 3 });
    expect(first.headers.get("etag")).toBeTruthy();
    const second = await call("PATCH", `/api/companies/${company}/sync/mappings/CONTACT`, { maxAttempts: 4 }, { "if-match": first.headers.get("etag")! });
    expect(second.status).toBe(200);
    const stale = await call("PATCH", `/api/companies/${company}/sync/mappings/CONTACT`, { maxAttempts: 5 }, { "if-match": first.headers.get("etag")! });
    expect(stale.status).toBe(412);
    expect((await mappingOf(company, "CONTACT")).maxAttempts).toBe(4);
  });
});

describe("mapping settings that would break later runs", () => {
  it("checks a constant against the field as it ends up, and takes & # $ inside quoted filter text", async () => {
    const company = await enabledCompany();
    const long = "9".repeat(40);
    expect(
      (await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { fields: [{ erp: "phoneNo", direction: "toCrm", constant: long }] })).status,
    ).toBe(200);
    // Turned toward the ERP, the constant would be written to a 30-character ERP field on every run.
    const turned = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { fields: [{ erp: "phoneNo", direction: "fromCrm" }] });
    expect(turned.status).toBe(400);
    expect(turned.json.errors[0]).toMatchObject({ path: "fields.0.constant", message: expect.stringContaining("phoneNo") });
    const quoted = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { crmFilter: "statecode eq 0 and name ne 'R&D #1 $top'" });
    expect(quoted.status).toBe(200);
  });

  it("applies concurrent changes made without If-Match one after the other, and refuses stale ones", async () => {
    const company = await enabledCompany();
    const answers = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((attempts) => call("PATCH", `/api/companies/${company}/sync/mappings/CONTACT`, { maxAttempts: attempts })),
    );
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const { etag } = await mappingOf(company, "CONTACT");
    const racing = await Promise.all(
      ["both", "toCrm"].map((direction) => call("PATCH", `/api/companies/${company}/sync/mappings/CONTACT`, { direction }, { "if-match": etag })),
    );
    expect(racing.map((answer) => answer.status).sort()).toEqual([200, 412]);
  });
});

describe("field mappings", () => {
  it("leaves a disabled field alone on both sides, and writes a constant instead of the ERP value", async () => {
    const company = await enabledCompany();
    const patched = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, {
      fields: [
        { erp: "phoneNo", enabled: false },
        { erp: "homePage", direction: "toCrm", constant: "https://www.contoso.example" },
      ],
    });
    expect(patched.status).toBe(200);
    expect(patched.json.fields).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ erp: "phoneNo", enabled: false }),
        expect.objectContaining({ erp: "homePage", direction: "toCrm", constant: "https://www.contoso.example" }),
      ]),
    );
    await put(company, "customers", [{ id: "C1", name: `${company} One`, phoneNo: "+45 1234", homePage: "erp.example" }]);
    await run(company, "CUSTOMER");
    const crmId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    const row = crmRow("accounts", crmId)!;
    expect(row.telephone1 ?? null).toBeNull();
    expect(row.websiteurl).toBe("https://www.contoso.example");

    // A CRM edit of the disabled field does not reach the ERP either.
    await jane("PATCH", `accounts(${crmId})`, { body: { telephone1: "+45 9999", name: `${company} Renamed` } });
    await run(company, "CUSTOMER");
    expect(await erp(company, "customers", "C1")).toMatchObject({ phoneNo: "+45 1234", name: `${company} Renamed`, homePage: "erp.example" });

    // Enabled again, the field synchronizes from the ERP (its value there is the one CRM never had).
    expect((await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { fields: [{ erp: "phoneNo", enabled: true }] })).status).toBe(200);
    await put(company, "customers", [{ id: "C1", name: `${company} Renamed`, phoneNo: "+45 5555", homePage: "erp.example" }]);
    await run(company, "CUSTOMER");
    expect(crmRow("accounts", crmId)!.telephone1).toBe("+45 5555");
  });

  it("filters the ERP records a mapping sends", async () => {
    const company = await enabledCompany();
    const filtered = await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, {
      erpFilter: [{ field: "countryRegionCode", op: "eq", value: "DK" }],
    });
    expect(filtered.status).toBe(200);
    await put(company, "customers", [
      { id: "DK1", name: `${company} Danish`, countryRegionCode: "DK" },
      { id: "NO1", name: `${company} Norwegian`, countryRegionCode: "NO" },
    ]);
    await run(company, "CUSTOMER");
    expect(await couplingOf(company, "CUSTOMER", "DK1")).toBeDefined();
    expect(await couplingOf(company, "CUSTOMER", "NO1")).toBeUndefined();
  });
});

describe("Use Default Synchronization Setup", () => {
  it("restores every changed mapping to its default", async () => {
    const company = await enabledCompany();
    const original = await mappingOf(company, "CUSTOMER");
    await call("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, {
      direction: "fromCrm",
      crmFilter: null,
      fields: [{ erp: "city", enabled: false }],
    });
    expect(await mappingOf(company, "CUSTOMER")).toMatchObject({ direction: "fromCrm" });
    const restored = await call("POST", `/api/companies/${company}/sync/default-setup`, { confirm: true });
    expect(restored.status).toBe(200);
    const after = await mappingOf(company, "CUSTOMER");
    expect(after).toMatchObject({ direction: original.direction, crmFilter: original.crmFilter, fields: original.fields });
  });
});
