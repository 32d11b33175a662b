/// <reference lib="dom" />
import { existsSync } from "node:fs";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SyncLogRepository } from "../../src/lib/storage/sync-log-repository";
import { type DemoApp, setUpDemoCompany, startDemoApp } from "../support/demo-app";
import { demoUsers, webApiAs } from "../support/raw-dataverse";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(chromiumPath);
const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-sync"];
const janeId = "a1b2c3d4-0006-4000-8000-000000000006";

// The synchronization views of the setup page, driven as an admin would: from the page alone.
describe.skipIf(!haveChromium)("the synchronization views of the setup page", () => {
  let demo: DemoApp;
  let browser: Browser;
  let admin: Awaited<ReturnType<typeof webApiAs>>;
  let jane: Awaited<ReturnType<typeof webApiAs>>;
  beforeAll(async () => {
    demo = await startDemoApp();
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
    admin = await webApiAs(demo.simulator, demoUsers.admin);
    jane = await webApiAs(demo.simulator, demoUsers.jane);
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await demo.app.call(method, path, body === undefined ? {} : { body });
    if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${response.text}`);
    return response.json;
  };
  async function enabledCompany(): Promise<string> {
    const company = await setUpDemoCompany(demo);
    await api("POST", `/api/companies/${company}/connection/enable`, { useDefaultSyncSetup: true });
    return company;
  }
  const put = (company: string, table: string, records: unknown[]) => api("PUT", `/api/companies/${company}/erp/${table}`, records);
  const run = (company: string, mapping: string) => demo.app.services.runner.runMapping(company, mapping);

  async function openPage(company: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("dialog", (dialog) => void dialog.accept());
    await page.goto(`${demo.app.url}/api/setup?company=${company}`);
    await page.locator("#workspace:not([hidden])").waitFor();
    await expect.poll(() => page.locator("#mappings tbody tr").count()).toBeGreaterThan(0);
    return { page, errors };
  }
  const status = (page: Page) => page.locator("#status").textContent();

  it("couples the ERP salesperson to its CRM user, and uncouples and re-couples a record whose CRM row was deleted", async () => {
    const company = await enabledCompany();
    await put(company, "salespeople", [{ id: "JS", name: "J. S." }]);
    await put(company, "customers", [{ id: "C1", name: `${company} Kept` }]);
    await run(company, "CUSTOMER");
    const { page, errors } = await openPage(company);

    await page.locator("#couple-mapping").selectOption("SALESPEOPLE");
    await page.locator("#couple-erpId").fill("JS");
    await page.locator("#couple-crmId").fill(janeId);
    await page.getByRole("button", { name: "Couple", exact: true }).click();
    await expect.poll(() => status(page)).toContain(`SALESPEOPLE JS is coupled to ${janeId}`);
    await page.getByRole("button", { name: "Synchronize SALESPEOPLE JS" }).click();
    await expect.poll(() => status(page)).toContain("SALESPEOPLE JS was synchronized");
    expect((await demo.app.services.erpRecordStore.get(company, "salespeople", "JS"))?.fields).toMatchObject({ name: "Jane Seller" });

    // A second coupling of the same CRM user is refused next to the field that names it.
    await put(company, "salespeople", [{ id: "XX", name: "Someone" }]);
    await page.locator("#couple-erpId").fill("XX");
    await page.getByRole("button", { name: "Couple", exact: true }).click();
    await expect.poll(() => page.locator("#error-couple").textContent()).toContain("already coupled");

    // The customer's CRM row is deleted: uncouple it, and couple it to a new row, synchronized from the ERP.
    const gone = (await demo.app.services.couplings.load(company, "CUSTOMER")).find((coupling) => coupling.erpId === "C1")!.crmId;
    await admin("DELETE", `accounts(${gone})`);
    await page.locator("#coupling-mapping").selectOption("CUSTOMER");
    await page.locator("#coupling-erpId").fill("C1");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("button", { name: "Uncouple CUSTOMER C1" }).click();
    await expect.poll(() => status(page)).toContain(`CUSTOMER C1 was uncoupled from ${gone}`);
    const fresh = await admin("POST", "accounts", { body: { name: "Placeholder", customertypecode: 3 }, headers: { prefer: "return=representation" } });
    expect(await page.locator("#couple-erpId").inputValue()).toBe("C1");
    await page.locator("#couple-crmId").fill(fresh.json.accountid);
    await page.getByRole("button", { name: "Couple", exact: true }).click();
    await expect.poll(() => status(page)).toContain(`CUSTOMER C1 is coupled to ${fresh.json.accountid}`);
    await page.getByRole("button", { name: "Synchronize CUSTOMER C1" }).click();
    await expect.poll(() => demo.simulator.store.get("accounts", fresh.json.accountid)?.name).toBe(`${company} Kept`);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("changes a mapping's direction, conflict setting and a field, and shows a refused value next to its field", async () => {
    const company = await enabledCompany();
    const { page, errors } = await openPage(company);
    await page.getByRole("button", { name: "Edit mapping CUSTOMER" }).click();
    await page.locator("#mapping-form").getByLabel("Direction", { exact: true }).selectOption("toCrm");
    await page.getByLabel("Update conflict resolution").selectOption("getUpdateFromIntegration");
    await page.getByLabel("Enabled: phoneNo").uncheck();
    await page.getByRole("button", { name: "Save mapping" }).click();
    await expect.poll(() => status(page)).toBe("The CUSTOMER mapping was saved.");
    const customer = (await api("GET", `/api/companies/${company}/sync/mappings`)).value.find((mapping: { name: string }) => mapping.name === "CUSTOMER");
    expect(customer).toMatchObject({ direction: "toCrm", updateConflictResolution: "getUpdateFromIntegration" });
    expect(customer.fields.find((field: { erp: string }) => field.erp === "phoneNo")).toMatchObject({ enabled: false });
    expect(await page.locator('#mappings tr[data-mapping="CUSTOMER"]').textContent()).toContain("To Dynamics 365 Sales");

    // Refused: a direction the mapping cannot run in, and a constant on a two-way field.
    await page.getByRole("button", { name: "Edit mapping SALESPEOPLE" }).click();
    await page.locator("#mapping-form").getByLabel("Direction", { exact: true }).selectOption("toCrm");
    await page.getByRole("button", { name: "Save mapping" }).click();
    await expect.poll(() => page.locator("#error-mapping-direction").textContent()).toContain('must be "fromCrm" for the SALESPEOPLE mapping');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("mapping-direction");
    expect(await page.locator("#mapping-direction").getAttribute("aria-invalid")).toBe("true");
    await page.getByRole("button", { name: "Cancel" }).click();

    await page.getByRole("button", { name: "Edit mapping CONTACT" }).click();
    await page.getByLabel("Constant value: email").fill("sales@contoso.example");
    await page.getByRole("button", { name: "Save mapping" }).click();
    await expect.poll(() => page.locator('#mapping-fields tr[data-field="email"]').textContent()).toContain("needs a one-way field");
    const contact = (await api("GET", `/api/companies/${company}/sync/mappings`)).value.find((mapping: { name: string }) => mapping.name === "CONTACT");
    expect(contact.fields.find((field: { erp: string }) => field.erp === "email").constant).toBeUndefined();
    expect(errors).toEqual([]);
    await page.close();
  });

  it("retries a skipped record and resolves a conflict", async () => {
    const company = await enabledCompany();
    await api("PATCH", `/api/companies/${company}/sync/mappings/CUSTOMER`, { maxAttempts: 1 });
    await put(company, "customers", [
      { id: "C1", name: `${company} Short` },
      { id: "C2", name: `${company} Two` },
    ]);
    await run(company, "CUSTOMER");
    const couplings = await demo.app.services.couplings.load(company, "CUSTOMER");
    const one = couplings.find((coupling) => coupling.erpId === "C1")!.crmId;
    const two = couplings.find((coupling) => coupling.erpId === "C2")!.crmId;
    // 150 characters fit CRM but not the ERP: C1 fails, and with one attempt it is skipped.
    await jane("PATCH", `accounts(${one})`, { body: { name: `${company} ${"x".repeat(140)}` } });
    // Both sides change C2's name: a conflict.
    await put(company, "customers", [{ id: "C2", name: "ERP two" }]);
    await jane("PATCH", `accounts(${two})`, { body: { name: "CRM two" } });
    await run(company, "CUSTOMER");

    const { page, errors } = await openPage(company);
    await expect.poll(() => page.locator("#issues tbody tr").count()).toBe(2);
    expect(await page.locator("#issues").textContent()).toContain('name: ERP "ERP two", Dynamics 365 "CRM two"');
    await page.getByRole("button", { name: "Keep ERP values: CUSTOMER C2" }).click();
    await expect.poll(() => status(page)).toContain("CUSTOMER C2: the ERP values were kept.");
    expect(demo.simulator.store.get("accounts", two)?.name).toBe("ERP two");

    await jane("PATCH", `accounts(${one})`, { body: { name: `${company} Fixed` } });
    await page.getByRole("button", { name: "Retry CUSTOMER C1" }).click();
    await expect.poll(() => status(page)).toContain("CUSTOMER C1 was restored and synchronized.");
    expect((await demo.app.services.erpRecordStore.get(company, "customers", "C1"))?.fields.name).toBe(`${company} Fixed`);
    await expect.poll(() => page.locator("#issues tbody").textContent()).toContain("Every record is synchronized.");
    expect(errors).toEqual([]);
    await page.close();
  });

  it("pages back through a day of log, filters it, and leads from a failed run to its errors and records", async () => {
    const company = await enabledCompany();
    const day = Date.now();
    for (let index = 0; index < 60; index++) {
      const startedAt = new Date(day - index * 24 * 60_000); // one run every 24 minutes over the last day
      await demo.app.services.syncLog.write(
        company,
        {
          id: SyncLogRepository.newLogId(startedAt, `old-${index}`, "toCrm"),
          runId: `old-${index}`,
          mapping: "ITEM-PRODUCT",
          direction: "toCrm",
          startedAt: startedAt.toISOString(),
          finishedAt: startedAt.toISOString(),
          inserted: index,
          modified: 0,
          deleted: 0,
          unchanged: 0,
          skipped: 0,
          failed: 0,
          message: "Completed.",
        },
        [],
      );
    }
    await put(company, "customers", [{ id: "C1", name: `${company} Blocked`, blocked: "All" }]);
    await put(
      company,
      "contacts",
      [1, 2, 3].map((index) => ({ id: `P${index}`, firstName: `Pat ${index}`, surname: company, companyNo: "C1" })),
    );
    await run(company, "CONTACT");

    const { page, errors } = await openPage(company);
    await page.locator("#log-mapping").selectOption("ITEM-PRODUCT");
    await page.getByRole("button", { name: "Show log" }).click();
    const seen: string[] = [];
    const rows = () => page.locator("#log tbody tr").evaluateAll((trs) => trs.map((tr) => tr.children[3]?.textContent ?? ""));
    await expect.poll(async () => (await rows()).length).toBe(25);
    seen.push(...(await rows()));
    for (const expected of [25, 10]) {
      await page.getByRole("button", { name: "Older" }).click();
      await expect.poll(async () => (await rows())[0]).toBe(String(seen.length));
      expect(await rows()).toHaveLength(expected);
      seen.push(...(await rows()));
    }
    expect(seen).toEqual(Array.from({ length: 60 }, (_, index) => String(index)));
    expect(await page.getByRole("button", { name: "Older" }).isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Newer" }).click();
    await expect.poll(async () => (await rows())[0]).toBe("25");

    // The last six hours only: 15 runs (every 24 minutes).
    const local = (time: number) => {
      const date = new Date(time - new Date(time).getTimezoneOffset() * 60_000);
      return date.toISOString().slice(0, 16);
    };
    await page.getByLabel("From", { exact: true }).fill(local(day - 6 * 3600_000 + 60_000));
    await page.getByLabel("To", { exact: true }).fill(local(day + 60_000));
    await page.getByRole("button", { name: "Show log" }).click();
    await expect.poll(async () => (await rows()).length).toBe(15);

    // The failed contact run: its errors, and the records it left deferred.
    await page.getByLabel("From", { exact: true }).fill("");
    await page.getByLabel("To", { exact: true }).fill("");
    await page.locator("#log-mapping").selectOption("CONTACT");
    await page.getByLabel("Failed only").check();
    await page.getByRole("button", { name: "Show log" }).click();
    await expect.poll(() => page.locator("#log tbody tr").count()).toBe(1);
    await page.locator("#log").getByRole("button", { name: "Errors" }).click();
    await expect.poll(() => page.locator("#log-errors li").count()).toBe(3);
    expect(await page.locator("#log-errors").textContent()).toContain("The companyNo record C1 is not coupled.");
    await page.locator("#log").getByRole("button", { name: "Records" }).click();
    await expect.poll(() => page.locator("#issues tbody tr").count()).toBe(3);
    expect(await page.locator("#issues tbody").textContent()).toContain("deferred");
    expect(await page.locator("#issues-run").textContent()).toContain("Records of run");
    await page.screenshot({ path: "test-results/sync-views.png", fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("offers each job only the actions its state allows, shows a running job's progress and the last test", async () => {
    const company = await enabledCompany();
    await api("POST", `/api/companies/${company}/sync/jobs/CUSTOMER/hold`);
    await api("POST", `/api/companies/${company}/connection/test`);
    const services = demo.app.services;
    /** The job running elsewhere (another instance holds its lease), with the given progress. */
    const runningElsewhere = async (job: string, progress: { recordsDone: number; recordsTotal?: number }) => {
      const stored = (await services.sync.job(company, job))!;
      await services.sync.saveJob(
        { ...stored.value, status: "In Process", leaseOwner: "elsewhere", leaseExpiresAt: new Date(Date.now() + 600_000).toISOString() },
        stored.etag,
      );
      await services.sync.saveProgress(company, job, JSON.stringify({ runId: job, phase: "synchronizing", ...progress, updatedAt: new Date().toISOString() }));
    };
    await runningElsewhere("CONTACT", { recordsDone: 120, recordsTotal: 300 });
    // A run still reading its ERP feed knows the records done, not yet the total.
    await runningElsewhere("ITEM-PRODUCT", { recordsDone: 800 });

    const { page, errors } = await openPage(company);
    const actionsOf = (job: string) => page.locator(`#jobs tr[data-job="${job}"] button`).allTextContents();
    await expect.poll(() => actionsOf("CUSTOMER")).toEqual(["Ready", "Run now"]);
    expect(await actionsOf("CURRENCY")).toEqual(["Hold", "Run now"]);
    expect(await actionsOf("CONTACT")).toEqual(["Hold"]);
    expect(await page.locator('#jobs tr[data-job="CONTACT"]').textContent()).toContain("In Process: synchronizing, 120 of 300 records");
    expect(await page.locator('#jobs tr[data-job="ITEM-PRODUCT"]').textContent()).toContain("In Process: synchronizing, 800 records done");
    await expect.poll(() => page.locator("#last-test").textContent()).toMatch(/^Last test .*: succeeded\. The connection test was successful/);

    await page.getByRole("button", { name: "Ready: CUSTOMER", exact: true }).click();
    await expect.poll(() => actionsOf("CUSTOMER")).toEqual(["Hold", "Run now"]);

    // Disabled: the entries are on hold and offer nothing (the API would refuse it).
    await page.getByRole("button", { name: "Disable" }).click();
    await expect.poll(() => page.locator("#jobs-note").isVisible()).toBe(true);
    await expect.poll(() => page.locator("#jobs button").count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("lists the orders submitted in Dynamics 365 Sales and creates one in the ERP, saying why another cannot be", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} Buyer` }]);
    await put(company, "items", [{ id: "I1", description: `${company} Bicycle`, unitPrice: 500 }]);
    await run(company, "CUSTOMER");
    await run(company, "ITEM-PRODUCT");
    const accountId = (await demo.app.services.couplings.load(company, "CUSTOMER")).find((coupling) => coupling.erpId === "C1")!.crmId;
    const productId = (await demo.app.services.couplings.load(company, "ITEM-PRODUCT")).find((coupling) => coupling.erpId === "I1")!.crmId;
    const walkIn = await jane("POST", "accounts", { body: { name: `${company} Walk-in`, customertypecode: 3 }, headers: { prefer: "return=representation" } });
    const submit = async (account: string) => {
      const order = await jane("POST", "salesorders", {
        body: { name: `${company} order`, "customerid_account@odata.bind": `/accounts(${account})` },
        headers: { prefer: "return=representation" },
      });
      await jane("POST", "salesorderdetails", {
        body: {
          "salesorderid@odata.bind": `/salesorders(${order.json.salesorderid})`,
          "productid@odata.bind": `/products(${productId})`,
          quantity: 2,
          priceperunit: 500,
        },
      });
      await jane("PATCH", `salesorders(${order.json.salesorderid})`, { body: { statecode: 1 } });
      return order.json as { salesorderid: string; ordernumber: string };
    };
    const good = await submit(accountId);
    const stranger = await submit(walkIn.json.accountid);

    const { page, errors } = await openPage(company);
    await expect.poll(() => page.locator("#orders-note").textContent()).toContain("Sales order integration is not enabled");
    await page.getByLabel("Sales order integration enabled").check();
    await expect.poll(() => page.locator(`#orders tr[data-order="${good.salesorderid}"]`).count()).toBe(1);
    expect(await page.locator(`#orders tr[data-order="${good.salesorderid}"]`).textContent()).toContain("1,000.00");
    await page.getByRole("button", { name: `Create in ERP: order ${good.ordernumber}` }).click();
    await expect.poll(() => status(page)).toMatch(new RegExp(`order ${good.ordernumber} was created in the ERP as sales order SO-CRM-\\d{6} with 1 line`));
    await expect.poll(() => page.locator(`#orders tr[data-order="${good.salesorderid}"]`).textContent()).toContain("SO-");
    await page.getByRole("button", { name: `Create in ERP: order ${stranger.ordernumber}` }).click();
    await expect
      .poll(() => page.locator(`#orders tr[data-order="${stranger.salesorderid}"] .error`).textContent())
      .toContain("is not coupled to an ERP customer");
    expect(errors).toEqual([]);
    // Leave no submitted order behind in the shared organization (it would block switching the integration off).
    for (const order of [good, stranger])
      await admin("PATCH", `salesorders(${order.salesorderid})`, { body: { statecode: 0, statuscode: 1 } }).catch(() => undefined);
    await page.close();
  });

  it("works with the keyboard alone, every new control labelled", async () => {
    const company = await enabledCompany();
    const { page, errors } = await openPage(company);
    await page.getByRole("button", { name: "Edit mapping CONTACT" }).focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe("mapping-form-heading");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("mapping-direction");
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea")]
        .filter((element) => !(element as HTMLElement).closest("[hidden]"))
        .filter((element) => element.id === "" || !document.querySelector(`label[for="${element.id}"]`))
        .map((element) => element.id || element.outerHTML),
    );
    expect(unlabelled).toEqual([]);
    await page.locator("#mapping-maxAttempts").focus();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.type("3");
    await page.keyboard.press("Enter");
    await expect.poll(() => status(page)).toBe("The CONTACT mapping was saved.");
    expect(
      (await api("GET", `/api/companies/${company}/sync/mappings`)).value.find((mapping: { name: string }) => mapping.name === "CONTACT").maxAttempts,
    ).toBe(3);
    expect(errors).toEqual([]);
    await page.close();
  });
});
