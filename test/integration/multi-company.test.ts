import { describe, expect, it } from "vitest";
import { companyValue } from "../../src/lib/model/company-scope";
import { connectionMessages } from "../../src/lib/connection/messages";
import { setUpDemoCompany } from "../support/demo-app";
import { useSyncHarness } from "../support/sync-harness";

// Several ERP companies enabled against one Dynamics 365 Sales organization: each synchronizes only its own
// CRM rows (Business Central's company column, bcbi_companyid) and the rows nobody took yet.
const harness = useSyncHarness();
const { jane, put, run, couplingOf, crmRow } = harness;

async function erpCustomers(company: string): Promise<string[]> {
  const response = await harness.demo.app.call("GET", `/api/companies/${company}/erp/customers?top=1000`);
  return (response.json.value as { id: string; deleted?: boolean }[]).filter((record) => !record.deleted).map((record) => record.id);
}

describe("two ERP companies on one organization", () => {
  it("each sees only its own rows: a CRM edit of one company's account never becomes a customer of the other", async () => {
    const a = await harness.enabledCompany();
    const b = await harness.enabledCompany();
    await put(a, "customers", [{ id: "10000", name: `${a} Adatum` }]);
    await put(b, "customers", [{ id: "10000", name: `${b} Trey` }]);
    await run(a, "CUSTOMER");
    await run(b, "CUSTOMER");
    const aAccount = (await couplingOf(a, "CUSTOMER", "10000"))!.crmId;
    const bAccount = (await couplingOf(b, "CUSTOMER", "10000"))!.crmId;
    const aCompany = (await harness.demo.app.services.setups.get(a))!.value.crmCompanyId;
    const bCompany = (await harness.demo.app.services.setups.get(b))!.value.crmCompanyId;
    expect(aCompany).toBeDefined();
    expect(aCompany).not.toBe(bCompany);
    expect(crmRow("accounts", aAccount)![companyValue]).toBe(aCompany);
    expect(crmRow("accounts", bAccount)![companyValue]).toBe(bCompany);

    // A salesperson edits company A's account in Dynamics 365 Sales.
    expect((await jane("PATCH", `accounts(${aAccount})`, { body: { telephone1: "+47 555 0101" } })).status).toBe(204);
    const bRun = await run(b, "CUSTOMER");
    expect(bRun.logs.every((log) => log.inserted === 0 && log.modified === 0 && log.failed === 0)).toBe(true);
    expect(await erpCustomers(b)).toEqual(["10000"]);
    await run(a, "CUSTOMER");
    expect((await harness.erp(a, "customers", "10000"))!.phoneNo).toBe("+47 555 0101");
    expect(await erpCustomers(a)).toEqual(["10000"]);
  });

  it("a new CRM account belongs to the first company that takes it; the other leaves it alone", async () => {
    const a = await harness.enabledCompany();
    const b = await harness.enabledCompany();
    await run(a, "CUSTOMER");
    await run(b, "CUSTOMER");
    const created = await jane("POST", "accounts", { body: { name: `${a} Walk-in`, customertypecode: 3 }, headers: { prefer: "return=representation" } });
    const accountId = created.json.accountid as string;
    await run(a, "CUSTOMER");
    await run(b, "CUSTOMER");
    const aCompany = (await harness.demo.app.services.setups.get(a))!.value.crmCompanyId;
    expect(crmRow("accounts", accountId)![companyValue]).toBe(aCompany);
    expect((await harness.demo.app.services.couplings.load(a, "CUSTOMER")).map((coupling) => coupling.crmId)).toContain(accountId);
    expect((await harness.demo.app.services.couplings.load(b, "CUSTOMER")).map((coupling) => coupling.crmId)).not.toContain(accountId);
    expect(await erpCustomers(b)).toEqual([]);
  });

  it("two companies running at once never both import one new account", async () => {
    const a = await harness.enabledCompany();
    const b = await harness.enabledCompany();
    await Promise.all([run(a, "CUSTOMER"), run(b, "CUSTOMER")]);
    const created = await jane("POST", "accounts", { body: { name: `${a} Contested`, customertypecode: 3 }, headers: { prefer: "return=representation" } });
    const accountId = created.json.accountid as string;
    await Promise.all([run(a, "CUSTOMER"), run(b, "CUSTOMER")]);
    const holders = await Promise.all(
      [a, b].map(async (company) => (await harness.demo.app.services.couplings.load(company, "CUSTOMER")).some((coupling) => coupling.crmId === accountId)),
    );
    expect(holders.filter(Boolean)).toHaveLength(1);
  });

  it("enable says which other companies share the organization; rows a company coupled before get its company", async () => {
    const other = await harness.enabledCompany();
    const a = await harness.enabledCompany();
    await put(a, "customers", [{ id: "10000", name: `${a} Legacy` }]);
    await run(a, "CUSTOMER");
    const accountId = (await couplingOf(a, "CUSTOMER", "10000"))!.crmId;
    // As coupled before rows were told apart by company.
    crmRow("accounts", accountId)![companyValue] = null;
    expect((await harness.demo.app.call("POST", `/api/companies/${a}/connection/disable`, { body: {} })).status).toBe(200);
    const enabled = await harness.demo.app.call("POST", `/api/companies/${a}/connection/enable`, { body: {} });
    expect(enabled.status).toBe(200);
    const shared = enabled.json.notices.find((notice: { code: string }) => notice.code === "shared-organization");
    expect(shared?.message).toContain("Other ERP companies synchronize with this Dynamics 365 Sales organization");
    expect(shared?.message).toContain(other);
    expect(shared?.message).not.toContain(`${a},`);
    const aCompany = (await harness.demo.app.services.setups.get(a))!.value.crmCompanyId;
    expect(crmRow("accounts", accountId)![companyValue]).toBe(aCompany);
  });

  it("an admin couples and matches within the company's rows: another company's account answers 409, an unclaimed one becomes the company's", async () => {
    const a = await harness.enabledCompany();
    const b = await harness.enabledCompany();
    await put(a, "customers", [{ id: "10000", name: `${a} Adatum` }]);
    await run(a, "CUSTOMER");
    const aAccount = (await couplingOf(a, "CUSTOMER", "10000"))!.crmId;
    await put(b, "customers", [
      { id: "20000", name: `${b} Trey` },
      { id: "30000", name: `${a} Adatum` },
      { id: "40000", name: `${b} Walk-in` },
    ]);
    const couple = await harness.demo.app.call("PUT", `/api/companies/${b}/sync/couplings/CUSTOMER/20000`, { body: { crmId: aAccount } });
    expect(couple.status).toBe(409);
    expect(couple.headers.get("content-type")).toContain("application/problem+json");
    expect(await couplingOf(b, "CUSTOMER", "20000")).toBeUndefined();

    // Matching by name finds the unclaimed account, never company A's one with the same name.
    const walkIn = await jane("POST", "accounts", { body: { name: `${b} Walk-in`, customertypecode: 3 }, headers: { prefer: "return=representation" } });
    const matched = await harness.demo.app.call("POST", `/api/companies/${b}/sync/mappings/CUSTOMER/match`, { body: { fields: ["name"] } });
    expect(matched.status, matched.text).toBe(200);
    expect(matched.json.coupled).toBe(1);
    expect(matched.json.unmatched).toEqual(expect.arrayContaining(["20000", "30000"]));
    expect((await couplingOf(b, "CUSTOMER", "40000"))!.crmId).toBe(walkIn.json.accountid);
    const bCompany = (await harness.demo.app.services.setups.get(b))!.value.crmCompanyId;
    expect(crmRow("accounts", walkIn.json.accountid)![companyValue]).toBe(bCompany);
    expect(crmRow("accounts", aAccount)![companyValue]).not.toBe(bCompany);
  });

  it("a connection user whose roles do not cover the company table enables with a notice saying rows are not told apart", async () => {
    const company = await setUpDemoCompany(harness.demo, { userName: "jane@demo.example" });
    const enabled = await harness.demo.app.call("POST", `/api/companies/${company}/connection/enable`, { body: { useDefaultSyncSetup: true } });
    expect(enabled.status, enabled.text).toBe(200);
    expect(enabled.json.notices).toContainEqual({ code: "company-table-forbidden", message: connectionMessages.companyTableForbidden });
    expect((await harness.demo.app.services.setups.get(company))!.value.crmCompanyId).toBeUndefined();
  });

  it("three companies coupling one unclaimed account by hand at the same moment: one succeeds, the others get 409", async () => {
    const companies = [await harness.enabledCompany(), await harness.enabledCompany(), await harness.enabledCompany()];
    for (const company of companies) await put(company, "customers", [{ id: "R1", name: `${company} Race` }]);
    const created = await jane("POST", "accounts", {
      body: { name: `${companies[0]} Contested by hand`, customertypecode: 3 },
      headers: { prefer: "return=representation" },
    });
    const accountId = created.json.accountid as string;
    const answers = await Promise.all(
      companies.map((company) => harness.demo.app.call("PUT", `/api/companies/${company}/sync/couplings/CUSTOMER/R1`, { body: { crmId: accountId } })),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 409, 409]);
    const winner = companies[answers.findIndex((answer) => answer.status === 200)]!;
    expect(crmRow("accounts", accountId)![companyValue]).toBe((await harness.demo.app.services.setups.get(winner))!.value.crmCompanyId);
    for (const company of companies) expect((await couplingOf(company, "CUSTOMER", "R1"))?.crmId === accountId).toBe(company === winner);
  });

  it("a CRM product matched to an item by its number is taken by the first company; the other leaves it alone", async () => {
    const a = await harness.enabledCompany();
    const b = await harness.enabledCompany();
    const number = `W-${a.slice(-6)}`;
    expect((await harness.admin("POST", "products", { body: { name: "Shared widget", productnumber: number, producttypecode: 1 } })).status).toBe(204);
    for (const company of [a, b]) await put(company, "items", [{ id: number, description: `${company} widget`, unitPrice: 5 }]);
    await run(a, "ITEM-PRODUCT");
    await run(b, "ITEM-PRODUCT");
    const product = harness.demo.simulator.store.rows("products").find((row) => row.productnumber === number)!;
    expect(product[companyValue]).toBe((await harness.demo.app.services.setups.get(a))!.value.crmCompanyId);
    expect((await couplingOf(a, "ITEM-PRODUCT", number))?.crmId).toBe(product.productid);
    expect((await couplingOf(b, "ITEM-PRODUCT", number))?.crmId).not.toBe(product.productid);
  });

  it("match never takes a row another company took while it waited", async () => {
    const a = await harness.enabledCompany();
    const b = await harness.enabledCompany();
    await run(b, "CUSTOMER");
    await put(a, "customers", [{ id: "M1", name: `${a} Matched late` }]);
    const created = await jane("POST", "accounts", { body: { name: `${a} Matched late`, customertypecode: 3 }, headers: { prefer: "return=representation" } });
    const accountId = created.json.accountid as string;
    const release = await harness.holdMapping(a, "CUSTOMER");
    const matching = harness.demo.app.call("POST", `/api/companies/${a}/sync/mappings/CUSTOMER/match`, { body: { fields: ["name"] } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Meanwhile company B's run takes the new account.
    await run(b, "CUSTOMER");
    await release();
    const answer = await matching;
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.coupled).toBe(0);
    expect(crmRow("accounts", accountId)![companyValue]).toBe((await harness.demo.app.services.setups.get(b))!.value.crmCompanyId);
    expect(await couplingOf(a, "CUSTOMER", "M1")).toBeUndefined();
  });

  it("a user clearing the company of a coupled account does not hand it to another company", async () => {
    const a = await harness.enabledCompany();
    const b = await harness.enabledCompany();
    await put(a, "customers", [{ id: "C1", name: `${a} Cleared` }]);
    await run(a, "CUSTOMER");
    await run(b, "CUSTOMER");
    const accountId = (await couplingOf(a, "CUSTOMER", "C1"))!.crmId;
    expect((await jane("PATCH", `accounts(${accountId})`, { body: { "bcbi_CompanyId@odata.bind": null } })).status).toBe(204);
    expect(crmRow("accounts", accountId)![companyValue] ?? null).toBeNull();
    await run(b, "CUSTOMER");
    expect((await harness.demo.app.services.couplings.load(b, "CUSTOMER")).some((coupling) => coupling.crmId === accountId)).toBe(false);
    await run(a, "CUSTOMER");
    expect(crmRow("accounts", accountId)![companyValue]).toBe((await harness.demo.app.services.setups.get(a))!.value.crmCompanyId);
  });
});
