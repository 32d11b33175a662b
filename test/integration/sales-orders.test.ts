import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { salesOrderMessages } from "../../src/lib/sales-orders/crm-sales-order";
import { useSyncHarness } from "../support/sync-harness";

// Sales order integration as a user meets it: a salesperson submits an order in Dynamics 365 Sales, the
// ERP lists it, creates it (by hand or by the job), and reports it shipped and invoiced back to CRM.
const harness = useSyncHarness();
const { jane, enabledCompany, put, run, couplingOf, crmRow, erp } = harness;
const call = (method: string, path: string, body?: unknown) => harness.demo.app.call(method, path, body === undefined ? {} : { body });

/** A company whose customers and items are in CRM, with sales order integration on. */
async function companyWithSalesOrders(): Promise<{ company: string; accountId: string; productId: string; otherProductId: string }> {
  const company = await enabledCompany();
  await put(company, "customers", [{ id: "C1", name: `${company} Buyer` }]);
  await put(company, "unitsOfMeasure", [{ id: "PCS", description: "Pieces" }]);
  await put(company, "items", [
    { id: "I1", description: `${company} Bicycle`, unitPrice: 500, unitOfMeasure: "PCS" },
    { id: "I2", description: `${company} Helmet`, unitPrice: 50, unitOfMeasure: "PCS" },
  ]);
  for (const mapping of ["CUSTOMER", "UNIT OF MEASURE", "ITEM-PRODUCT"]) await run(company, mapping);
  const on = await call("PATCH", `/api/companies/${company}/connection/settings`, { salesOrderIntegrationEnabled: true });
  expect(on.status, on.text).toBe(200);
  return {
    company,
    accountId: (await couplingOf(company, "CUSTOMER", "C1"))!.crmId,
    productId: (await couplingOf(company, "ITEM-PRODUCT", "I1"))!.crmId,
    otherProductId: (await couplingOf(company, "ITEM-PRODUCT", "I2"))!.crmId,
  };
}

/** What a salesperson does in CRM: an order with lines, then Submit. */
async function submitOrder(
  accountId: string,
  lines: { productId: string; quantity: number; price: number; discount?: number }[],
  salesorderid?: string,
): Promise<string> {
  const created = await jane("POST", "salesorders", {
    body: {
      ...(salesorderid && { salesorderid }),
      name: "Spring order",
      "customerid_account@odata.bind": `/accounts(${accountId})`,
      requestdeliveryby: "2026-12-15T00:00:00Z",
    },
    headers: { prefer: "return=representation" },
  });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  const orderId = created.json.salesorderid as string;
  for (const line of lines) {
    const added = await jane("POST", "salesorderdetails", {
      body: {
        "salesorderid@odata.bind": `/salesorders(${orderId})`,
        "productid@odata.bind": `/products(${line.productId})`,
        quantity: line.quantity,
        priceperunit: line.price,
        ...(line.discount && { manualdiscountamount: line.discount }),
      },
    });
    expect(added.status, JSON.stringify(added.json)).toBe(204);
  }
  const submitted = await jane("PATCH", `salesorders(${orderId})`, { body: { statecode: 1, statuscode: 3 } });
  expect(submitted.status, JSON.stringify(submitted.json)).toBe(204);
  return orderId;
}

describe("sales orders submitted in Dynamics 365 Sales", () => {
  it("are listed with customer and totals, become ERP orders with their lines, and turn Invoiced when the ERP invoices them", async () => {
    const { company, accountId, productId, otherProductId } = await companyWithSalesOrders();
    const orderId = await submitOrder(accountId, [
      { productId, quantity: 2, price: 500, discount: 100 },
      { productId: otherProductId, quantity: 1, price: 50 },
    ]);

    const listed = await call("GET", `/api/companies/${company}/sales-orders/submitted`);
    expect(listed.status).toBe(200);
    const order = listed.json.value.find((entry: { crmOrderId: string }) => entry.crmOrderId === orderId);
    expect(order).toMatchObject({ customer: { crmId: accountId, erpNo: "C1" }, totalAmount: 950, totalLineItemAmount: 950, erpOrder: null });

    const created = await call("POST", `/api/companies/${company}/sales-orders/${orderId}/create-in-erp`);
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({
      customerNo: "C1",
      orderDate: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
      requestedDeliveryDate: "2026-12-15",
      externalDocumentNo: order.orderNumber,
      crmOrderId: orderId,
      lines: [
        { lineNo: 10000, type: "Item", no: "I1", quantity: 2, unitPrice: 500, lineDiscountAmount: 100 },
        { lineNo: 20000, type: "Item", no: "I2", quantity: 1, unitPrice: 50 },
      ],
    });
    const erpNo = created.json.id as string;
    expect(await erp(company, "salesOrders", erpNo)).toMatchObject({ customerNo: "C1", crmOrderId: orderId });
    expect(String(crmRow("salesorders", orderId)!.lastbackofficesubmit)).toMatch(new RegExp(`^${created.json.orderDate}`));
    expect(
      (await call("GET", `/api/companies/${company}/sales-orders/submitted`)).json.value.find((entry: { crmOrderId: string }) => entry.crmOrderId === orderId),
    ).toMatchObject({ erpOrder: { no: erpNo, deleted: false } });

    // A second "Create in ERP" makes no second order.
    const again = await call("POST", `/api/companies/${company}/sales-orders/${orderId}/create-in-erp`);
    expect(again.status).toBe(409);
    expect(again.json.detail).toBe(salesOrderMessages.alreadyCreated(order.orderNumber, erpNo));

    // The ERP invoices the order: the status job turns the CRM order Invoiced.
    await put(company, "salesOrders", [{ ...created.json, shipped: true, invoiced: true }]);
    expect(await harness.demo.app.services.jobs.runJob(company, "SALES ORDER STATUS", undefined, true)).toBe("processed");
    expect(crmRow("salesorders", orderId)).toMatchObject({ statecode: 4, statuscode: 100003 });
  });

  it("reports a shipped order Fulfilled with FulfillSalesOrder, and an order deleted in the ERP in the log", async () => {
    const { company, accountId, productId } = await companyWithSalesOrders();
    const shippedId = await submitOrder(accountId, [{ productId, quantity: 1, price: 500 }]);
    const deletedId = await submitOrder(accountId, [{ productId, quantity: 3, price: 500 }]);
    const shipped = (await call("POST", `/api/companies/${company}/sales-orders/${shippedId}/create-in-erp`)).json;
    const deleted = (await call("POST", `/api/companies/${company}/sales-orders/${deletedId}/create-in-erp`)).json;
    await put(company, "salesOrders", [{ ...shipped, shipped: true }]);
    expect((await call("DELETE", `/api/companies/${company}/erp/salesOrders/${deleted.id}`)).status).toBe(204);

    await harness.demo.app.services.jobs.runJob(company, "SALES ORDER STATUS", undefined, true);
    expect(crmRow("salesorders", shippedId)).toMatchObject({ statecode: 3, statuscode: 100001 });
    expect(crmRow("salesorders", deletedId)).toMatchObject({ statecode: 1 });
    const [log] = (await call("GET", `/api/companies/${company}/sync/log?mapping=${encodeURIComponent("SALES ORDER STATUS")}`)).json.value;
    expect(log).toMatchObject({ modified: 1, deleted: 1 });
    const errors = (await call("GET", log.links.errors)).json.value;
    expect(errors).toEqual([expect.objectContaining({ sourceId: deleted.id, reason: expect.stringContaining("was deleted in the ERP") })]);
    // Uncoupled: it can be created in the ERP again.
    expect((await call("POST", `/api/companies/${company}/sales-orders/${deletedId}/create-in-erp`)).status).toBe(201);
    // A second run reports nothing new.
    await harness.demo.app.services.jobs.runJob(company, "SALES ORDER STATUS", undefined, true);
    const [second] = (await call("GET", `/api/companies/${company}/sync/log?mapping=${encodeURIComponent("SALES ORDER STATUS")}`)).json.value;
    expect(second).toMatchObject({ modified: 0, deleted: 0, failed: 0 });
  });

  it("are created by the AUTO CREATE SALES ORDERS job when the setting is on, counted in X of Y", async () => {
    const { company, accountId, productId } = await companyWithSalesOrders();
    const jobs = async () => (await call("GET", `/api/companies/${company}/sync/jobs`)).json;
    expect((await jobs()).value.map((job: { id: string }) => job.id)).toContain("SALES ORDER STATUS");
    expect((await jobs()).activeScheduledSyncJobs.text).toBe("12 of 13");

    const on = await call("PATCH", `/api/companies/${company}/connection/settings`, { autoCreateSalesOrders: true });
    expect(on.json).toMatchObject({ autoCreateSalesOrders: true });
    expect((await jobs()).activeScheduledSyncJobs.text).toBe("13 of 14");
    const orderId = await submitOrder(accountId, [{ productId, quantity: 5, price: 500 }]);
    expect(await harness.demo.app.services.jobs.runJob(company, "AUTO CREATE SALES ORDERS", undefined, true)).toBe("processed");
    const coupled = (await harness.demo.app.services.couplings.load(company, "SALESORDER-ORDER")).find((coupling) => coupling.crmId === orderId);
    expect(coupled).toBeDefined();
    expect(await erp(company, "salesOrders", coupled!.erpId)).toMatchObject({ customerNo: "C1", lines: [expect.objectContaining({ no: "I1", quantity: 5 })] });
    // The job does not create it twice.
    await harness.demo.app.services.jobs.runJob(company, "AUTO CREATE SALES ORDERS", undefined, true);
    expect((await harness.demo.app.services.couplings.load(company, "SALESORDER-ORDER")).filter((coupling) => coupling.crmId === orderId)).toHaveLength(1);

    const off = await call("PATCH", `/api/companies/${company}/connection/settings`, { autoCreateSalesOrders: false });
    expect(off.status).toBe(200);
    expect((await jobs()).value.map((job: { id: string }) => job.id)).not.toContain("AUTO CREATE SALES ORDERS");
    await call("PATCH", `/api/companies/${company}/connection/settings`, { salesOrderIntegrationEnabled: false });
  });

  it("refuses with the reason: integration off, customer or product not coupled, not submitted, no such order", async () => {
    const { company, accountId, productId } = await companyWithSalesOrders();
    const unknownAccount = await jane("POST", "accounts", { body: { name: "Walk-in", customertypecode: 3 }, headers: { prefer: "return=representation" } });
    const stranger = await submitOrder(unknownAccount.json.accountid, [{ productId, quantity: 1, price: 1 }]);
    const refusedCustomer = await call("POST", `/api/companies/${company}/sales-orders/${stranger}/create-in-erp`);
    expect(refusedCustomer.status).toBe(422);
    expect(refusedCustomer.json.detail).toContain("is not coupled to an ERP customer");

    const product = await harness.admin("POST", "products", {
      body: { name: "Not in the ERP", productnumber: `X-${company}`.slice(0, 20) },
      headers: { prefer: "return=representation" },
    });
    expect(product.status, JSON.stringify(product.json)).toBe(201);
    const uncoupledProduct = await submitOrder(accountId, [{ productId: product.json.productid, quantity: 1, price: 1 }]);
    const refusedProduct = await call("POST", `/api/companies/${company}/sales-orders/${uncoupledProduct}/create-in-erp`);
    expect(refusedProduct.status).toBe(422);
    expect(refusedProduct.json.detail).toContain("Line 1");
    expect(refusedProduct.json.detail).toContain("is not coupled to an ERP item or resource");

    const draft = await jane("POST", "salesorders", {
      body: { name: "Draft", "customerid_account@odata.bind": `/accounts(${accountId})` },
      headers: { prefer: "return=representation" },
    });
    expect((await call("POST", `/api/companies/${company}/sales-orders/${draft.json.salesorderid}/create-in-erp`)).status).toBe(409);
    expect((await call("POST", `/api/companies/${company}/sales-orders/00000000-0000-4000-8000-000000000000/create-in-erp`)).status).toBe(404);
    expect((await call("POST", `/api/companies/${company}/sales-orders/not-a-guid/create-in-erp`)).status).toBe(400);

    // Cancel the submitted ones so integration can be switched off (a submitted order blocks it), then refuse.
    // (In the organization every test of this file shares.)
    for (const row of harness.demo.simulator.store.rows("salesorders").filter((order) => order.statecode === 1)) {
      await harness.admin("PATCH", `salesorders(${String(row.salesorderid)})`, { body: { statecode: 0, statuscode: 1 } });
    }
    const off = await call("PATCH", `/api/companies/${company}/connection/settings`, { salesOrderIntegrationEnabled: false });
    expect(off.status, off.text).toBe(200);
    const refused = await call("GET", `/api/companies/${company}/sales-orders/submitted`);
    expect(refused.status).toBe(409);
    expect(refused.json.detail).toBe(salesOrderMessages.integrationOff);
    expect((await call("POST", `/api/companies/${company}/sales-orders/${stranger}/create-in-erp`)).json.detail).toBe(salesOrderMessages.integrationOff);
  });
});

describe("the CUSTOMER STATISTICS job", () => {
  it("writes each coupled customer's ERP figures to its account statistics in CRM, and only what changed", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [
      { id: "C1", name: `${company} One`, creditLimit: 10000 },
      { id: "C2", name: `${company} Two` },
    ]);
    await run(company, "CUSTOMER");
    await put(company, "customerStatistics", [
      { id: "C1", balance: 1250.5, outstandingOrders: 300, shippedNotInvoiced: 100, overdueAmounts: 50, overdueAsOf: "2026-11-20", totalSales: 9000 },
    ]);
    const jobs = harness.demo.app.services.jobs;
    const statisticsJob = async () =>
      (await call("GET", `/api/companies/${company}/sync/jobs`)).json.value.find((job: { id: string }) => job.id === "CUSTOMER STATISTICS");
    expect(await statisticsJob()).toMatchObject({ status: "On Hold" });

    expect(await jobs.runJob(company, "CUSTOMER STATISTICS", undefined, true)).toBe("processed");
    const accountId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    const account = crmRow("accounts", accountId)!;
    expect(account._nav_accountstatisticsid_value).toBe(accountId);
    expect(crmRow("nav_accountstatisticses", accountId)).toMatchObject({
      nav_name: `${company} One`,
      nav_customerno: "C1",
      nav_balancelcy: 1250.5,
      nav_outstandingorderslcy: 300,
      nav_shippednotinvoicedlcy: 100,
      nav_overdueamountslcy: 50,
      nav_totalsaleslcy: 9000,
      nav_creditlimitlcy: 10000,
    });
    // A customer without figures shows zeros, as the ERP does.
    const other = (await couplingOf(company, "CUSTOMER", "C2"))!.crmId;
    expect(crmRow("nav_accountstatisticses", other)).toMatchObject({ nav_balancelcy: 0, nav_customerno: "C2" });
    // (Accounts other tests of this file made in the shared organization come in as CRM-born customers too.)
    expect(await statisticsJob()).toMatchObject({ status: "On Hold", lastResult: expect.stringMatching(/^\d+ account statistics written, 0 failed$/) });

    await put(company, "customerStatistics", [{ id: "C1", balance: 99 }]);
    await jobs.runJob(company, "CUSTOMER STATISTICS", undefined, true);
    expect(crmRow("nav_accountstatisticses", accountId)).toMatchObject({ nav_balancelcy: 99, nav_outstandingorderslcy: 0 });
    expect((await statisticsJob()).lastResult).toBe("1 account statistics written, 0 failed");
  });
});

describe("the rest of the default mappings", () => {
  it("sends sales prices as price list items of the group's price list, and posted invoice lines after their invoice", async () => {
    const company = await enabledCompany();
    const tag = company.slice(-8).toUpperCase();
    await put(company, "customers", [{ id: "C1", name: `${company} Buyer` }]);
    await put(company, "items", [{ id: "I1", description: `${company} Bicycle`, unitPrice: 500 }]);
    await put(company, "customerPriceGroups", [{ id: `RETAIL${tag}`, description: "Retail" }]);
    await put(company, "salesPrices", [{ id: "SP1", itemNo: "I1", customerPriceGroup: `RETAIL${tag}`, unitPrice: 450 }]);
    await put(company, "postedSalesInvoices", [{ id: `INV${tag}`, customerNo: "C1", amount: 900, description: "Bikes" }]);
    await put(company, "postedSalesInvoiceLines", [{ id: `INV${tag}-1`, documentNo: `INV${tag}`, lineNo: 10000, itemNo: "I1", quantity: 2, unitPrice: 450 }]);

    // Run in the order a full synchronization uses: what others look up goes first.
    await call("POST", `/api/companies/${company}/sync/full`);
    await harness.demo.app.host.processQueues();

    const priceListId = (await couplingOf(company, "CUSTPRCGRP-PRICE", `RETAIL${tag}`))!.crmId;
    const productId = (await couplingOf(company, "ITEM-PRODUCT", "I1"))!.crmId;
    const price = crmRow("productpricelevels", (await couplingOf(company, "SALESPRC-PRODPRICE", "SP1"))!.crmId);
    expect(price).toMatchObject({ _pricelevelid_value: priceListId, _productid_value: productId, amount: 450, pricingmethodcode: 1 });
    const invoiceId = (await couplingOf(company, "POSTEDSALESINV-INV", `INV${tag}`))!.crmId;
    const line = crmRow("invoicedetails", (await couplingOf(company, "POSTEDSALESLINE-INV", `INV${tag}-1`))!.crmId);
    expect(line).toMatchObject({
      _invoiceid_value: invoiceId,
      _productid_value: productId,
      quantity: 2,
      priceperunit: 450,
      ispriceoverridden: true,
      lineitemnumber: 10000,
    });

    // A changed price updates the same price list item.
    await put(company, "salesPrices", [{ id: "SP1", itemNo: "I1", customerPriceGroup: `RETAIL${tag}`, unitPrice: 425 }]);
    await run(company, "SALESPRC-PRODPRICE");
    expect(crmRow("productpricelevels", (await couplingOf(company, "SALESPRC-PRODPRICE", "SP1"))!.crmId)).toMatchObject({ amount: 425 });
  });
});

describe("every mapping of the default setup moves data", () => {
  it("sends currencies, units, resources and salespeople's CRM users where the ERP's default setup says", async () => {
    const company = await enabledCompany();
    const tag = company.slice(-6).toUpperCase();
    await put(company, "currencies", [{ id: "NOK", description: "Norwegian krone", symbol: "kr", exchangeRate: 0.09 }]);
    await put(company, "unitsOfMeasure", [{ id: `HOUR${tag}`, description: "Hour" }]);
    await put(company, "resources", [{ id: `R${tag}`, name: `${company} Consultant`, unitPrice: 120, unitOfMeasure: `HOUR${tag}` }]);
    await call("POST", `/api/companies/${company}/sync/full`);
    await harness.demo.app.host.processQueues();
    expect(crmRow("transactioncurrencies", (await couplingOf(company, "CURRENCY", "NOK"))!.crmId)).toMatchObject({
      isocurrencycode: "NOK",
      currencysymbol: "kr",
    });
    const unit = (await couplingOf(company, "UNIT OF MEASURE", `HOUR${tag}`))!.crmId;
    expect(crmRow("uomschedules", unit)).toMatchObject({ name: `HOUR${tag}` });
    expect(crmRow("products", (await couplingOf(company, "RESOURCE-PRODUCT", `R${tag}`))!.crmId)).toMatchObject({
      name: `${company} Consultant`,
      producttypecode: 3,
      price: 120,
      _defaultuomscheduleid_value: unit,
    });
    // CRM users become ERP salespeople (coupled by email where one exists).
    const salespeople = (await call("GET", `/api/companies/${company}/erp/salespeople?top=50`)).json.value;
    expect(salespeople.map((person: { name: string }) => person.name)).toContain("Jane Seller");
  });
});

describe("option mappings", () => {
  it("maps payment terms, shipment methods and shipping agents to the account's option sets, both ways, and defers an unmapped code", async () => {
    const company = await enabledCompany();
    // Before any option mapping is set up, the option fields stay out: the customer synchronizes without them.
    await put(company, "customers", [{ id: "C0", name: `${company} Early`, paymentTermsCode: "30D" }]);
    await run(company, "CUSTOMER");
    expect(crmRow("accounts", (await couplingOf(company, "CUSTOMER", "C0"))!.crmId)!.paymenttermscode ?? null).toBeNull();

    await put(company, "paymentTerms", [{ id: "45D", description: "Net 45", crmOptionValue: 3 }]);
    await put(company, "customers", [{ id: "C1", name: `${company} Terms`, paymentTermsCode: "30D", shipmentMethodCode: "FOB", shippingAgentCode: "UPS" }]);
    await run(company, "CUSTOMER");
    // Set up, but without this code: the customer waits, and says why.
    expect(await couplingOf(company, "CUSTOMER", "C1")).toBeUndefined();
    const [issue] = (await call("GET", `/api/companies/${company}/sync/issues?mapping=CUSTOMER&kind=deferred`)).json.value;
    expect(issue.reason).toContain("The paymentTerms value 30D has no option mapping");

    await put(company, "paymentTerms", [
      { id: "30D", description: "Net 30", crmOptionValue: 1 },
      { id: "45D", description: "Net 45", crmOptionValue: 3 },
    ]);
    await put(company, "shipmentMethods", [{ id: "FOB", description: "Free on board", crmOptionValue: 1 }]);
    await put(company, "shippingAgents", [{ id: "UPS", description: "UPS", crmOptionValue: 4 }]);
    await run(company, "CUSTOMER");
    const accountId = (await couplingOf(company, "CUSTOMER", "C1"))!.crmId;
    expect(crmRow("accounts", accountId)).toMatchObject({ paymenttermscode: 1, address1_freighttermscode: 1, address1_shippingmethodcode: 4 });

    // A salesperson changes the payment terms in CRM: the ERP customer gets the code of that option.
    await jane("PATCH", `accounts(${accountId})`, { body: { paymenttermscode: 3 } });
    await run(company, "CUSTOMER");
    expect(await erp(company, "customers", "C1")).toMatchObject({ paymentTermsCode: "45D", shipmentMethodCode: "FOB", shippingAgentCode: "UPS" });
  });
});

describe("sales orders and statistics under hostile conditions", () => {
  it("pages submitted orders only with the tokens it gave out, never overwrites a taken ERP number, and refuses lines the ERP would not take", async () => {
    const { company, accountId, productId } = await companyWithSalesOrders();
    const first = await submitOrder(accountId, [{ productId, quantity: 1, price: 10 }]);
    await submitOrder(accountId, [{ productId, quantity: 2, price: 10 }]);
    const page = await call("GET", `/api/companies/${company}/sales-orders/submitted?top=1`);
    expect(page.json.value).toHaveLength(1);
    const next = await call("GET", `/api/companies/${company}/sales-orders/submitted?top=1&continuationToken=${page.json.continuationToken}`);
    expect(next.status).toBe(200);
    expect(next.json.value[0].crmOrderId).not.toBe(page.json.value[0].crmOrderId);
    const forged = Buffer.from(`<cookie pagenumber="2" /><x`).toString("base64url");
    const url = Buffer.from("https://localhost/api/data/v9.2/salesorders?$filter=statecode eq 0").toString("base64url");
    for (const token of [forged, url, "garbage"])
      expect((await call("GET", `/api/companies/${company}/sales-orders/submitted?continuationToken=${token}`)).status).toBe(400);

    // The ERP already has an order of its own with the number this CRM order would get: it is passed over, the ERP order kept.
    const number = "SO-CRM-000001";
    await put(company, "salesOrders", [
      { id: number, customerNo: "C1", orderDate: "2026-11-01", lines: [{ lineNo: 1, type: "Item", no: "I2", quantity: 9, unitPrice: 1 }] },
    ]);
    const made = await call("POST", `/api/companies/${company}/sales-orders/${first}/create-in-erp`);
    expect(made.status, made.text).toBe(201);
    expect(made.json.id).toBe("SO-CRM-000002");
    expect(await erp(company, "salesOrders", number)).toMatchObject({ lines: [expect.objectContaining({ no: "I2", quantity: 9 })] });
    // Asked again, the same order is the one made, under its number.
    const again = await call("POST", `/api/companies/${company}/sales-orders/${first}/create-in-erp`);
    expect(again.status).toBe(409);
    expect(again.json.detail).toBe(salesOrderMessages.alreadyCreated(crmRow("salesorders", first)!.ordernumber as string, "SO-CRM-000002"));

    const negative = await submitOrder(accountId, [{ productId, quantity: -2, price: 10 }]);
    const refused = await call("POST", `/api/companies/${company}/sales-orders/${negative}/create-in-erp`);
    expect(refused.status).toBe(422);
    expect(refused.json.detail).toContain("quantity");
    for (const row of harness.demo.simulator.store.rows("salesorders").filter((order) => order.statecode === 1)) {
      await harness.admin("PATCH", `salesorders(${String(row.salesorderid)})`, { body: { statecode: 0, statuscode: 1 } });
    }
  });

  it("gives two CRM orders whose ids share their first 17 hex digits two ERP numbers", async () => {
    const { company, accountId, productId } = await companyWithSalesOrders();
    const prefix = `${randomUUID().slice(0, 19)}${randomUUID().slice(19, 20)}`;
    const one = await submitOrder(accountId, [{ productId, quantity: 1, price: 10 }], `${prefix}000-000000000001`);
    const two = await submitOrder(accountId, [{ productId, quantity: 1, price: 10 }], `${prefix}000-000000000002`);
    expect(one.replace(/-/g, "").slice(0, 17)).toBe(two.replace(/-/g, "").slice(0, 17));
    const first = await call("POST", `/api/companies/${company}/sales-orders/${one}/create-in-erp`);
    const second = await call("POST", `/api/companies/${company}/sales-orders/${two}/create-in-erp`);
    expect([first.status, second.status], second.text).toEqual([201, 201]);
    expect(first.json.id).not.toBe(second.json.id);
    expect((await erp(company, "salesOrders", first.json.id))!.crmOrderId).toBe(one);
    expect((await erp(company, "salesOrders", second.json.id))!.crmOrderId).toBe(two);
  });

  it("keeps crmOrderId the service's: the ERP may send back what it read or leave it out, never name another order", async () => {
    const { company, accountId, productId } = await companyWithSalesOrders();
    const orderId = await submitOrder(accountId, [{ productId, quantity: 1, price: 10 }]);
    const otherId = await submitOrder(accountId, [{ productId, quantity: 2, price: 10 }]);
    const made = (await call("POST", `/api/companies/${company}/sales-orders/${orderId}/create-in-erp`)).json;
    // Another order's id on this order, and a CRM id on a new ERP order: both refused, nothing stored.
    const own = { id: "ERP-OWN-1", customerNo: "C1", orderDate: "2026-11-01", lines: [{ lineNo: 1, type: "Item", no: "I1", quantity: 1, unitPrice: 1 }] };
    const refused = await call("PUT", `/api/companies/${company}/erp/salesOrders`, [
      { ...made, crmOrderId: otherId },
      { ...own, crmOrderId: otherId },
    ]);
    expect(refused.status).toBe(400);
    expect(refused.json.errors.map((error: { path: string }) => error.path)).toEqual(["[0].crmOrderId", "[1].crmOrderId"]);
    expect((await erp(company, "salesOrders", made.id))!.crmOrderId).toBe(orderId);
    expect(await erp(company, "salesOrders", own.id)).toBeUndefined();
    // create-in-erp still makes the other order (no ERP order claims it).
    expect((await call("POST", `/api/companies/${company}/sales-orders/${otherId}/create-in-erp`)).status).toBe(201);
    // Sent back as read, or left out: accepted, and the link stays.
    const { crmOrderId: _id, ...withoutId } = made;
    expect((await call("PUT", `/api/companies/${company}/erp/salesOrders`, [{ ...made, shipped: true }])).status).toBe(200);
    expect((await call("PUT", `/api/companies/${company}/erp/salesOrders`, [{ ...withoutId, invoiced: true }])).status).toBe(200);
    expect(await erp(company, "salesOrders", made.id)).toMatchObject({ crmOrderId: orderId, invoiced: true });
  });

  it("leaves a CRM order closed meanwhile as it is, without an error on every run", async () => {
    const { company, accountId, productId } = await companyWithSalesOrders();
    const shippedFirst = await submitOrder(accountId, [{ productId, quantity: 1, price: 10 }]);
    const canceledInCrm = await submitOrder(accountId, [{ productId, quantity: 1, price: 10 }]);
    const a = (await call("POST", `/api/companies/${company}/sales-orders/${shippedFirst}/create-in-erp`)).json;
    const b = (await call("POST", `/api/companies/${company}/sales-orders/${canceledInCrm}/create-in-erp`)).json;
    await put(company, "salesOrders", [{ ...a, shipped: true }]);
    await harness.demo.app.services.jobs.runJob(company, "SALES ORDER STATUS", undefined, true);
    expect(crmRow("salesorders", shippedFirst)).toMatchObject({ statecode: 3 });
    // Invoiced after the shipment; the other order was closed by a user in CRM.
    harness.demo.simulator.store.update("salesorders", canceledInCrm, { statecode: 2, statuscode: 4 }, "a1b2c3d4-0006-4000-8000-000000000006");
    await put(company, "salesOrders", [
      { ...a, shipped: true, invoiced: true },
      { ...b, shipped: true },
    ]);
    for (let round = 0; round < 2; round++) {
      await harness.demo.app.services.jobs.runJob(company, "SALES ORDER STATUS", undefined, true);
      const [log] = (await call("GET", `/api/companies/${company}/sync/log?mapping=${encodeURIComponent("SALES ORDER STATUS")}`)).json.value;
      expect(log).toMatchObject({ failed: 0 });
    }
    expect(crmRow("salesorders", shippedFirst)).toMatchObject({ statecode: 3 });
    expect(crmRow("salesorders", canceledInCrm)).toMatchObject({ statecode: 2 });
  });

  it("writes every other customer's statistics when one account is gone, and links a re-coupled account", async () => {
    const company = await enabledCompany();
    await put(company, "customers", [
      { id: "S1", name: `${company} Stays` },
      { id: "S2", name: `${company} Goes` },
    ]);
    await run(company, "CUSTOMER");
    const stays = (await couplingOf(company, "CUSTOMER", "S1"))!.crmId;
    const goes = (await couplingOf(company, "CUSTOMER", "S2"))!.crmId;
    await harness.admin("DELETE", `accounts(${goes})`);
    await put(company, "customerStatistics", [
      { id: "S1", balance: 10 },
      { id: "S2", balance: 20 },
    ]);
    await harness.demo.app.services.jobs.runJob(company, "CUSTOMER STATISTICS", undefined, true);
    expect(crmRow("nav_accountstatisticses", stays)).toMatchObject({ nav_balancelcy: 10 });
    const [log] = (await call("GET", `/api/companies/${company}/sync/log?mapping=${encodeURIComponent("CUSTOMER STATISTICS")}`)).json.value;
    expect(log.failed).toBe(1);
    expect((await call("GET", log.links.errors)).json.value).toEqual([expect.objectContaining({ sourceId: "S2" })]);

    // Re-coupled to a new account, S2's statistics go there and the account links to them.
    await call("DELETE", `/api/companies/${company}/sync/couplings/CUSTOMER/S2`);
    const fresh = await harness.admin("POST", "accounts", {
      body: { name: `${company} Goes again`, customertypecode: 3 },
      headers: { prefer: "return=representation" },
    });
    await call("PUT", `/api/companies/${company}/sync/couplings/CUSTOMER/S2`, { crmId: fresh.json.accountid });
    await harness.demo.app.services.jobs.runJob(company, "CUSTOMER STATISTICS", undefined, true);
    expect(crmRow("accounts", fresh.json.accountid)).toMatchObject({ _nav_accountstatisticsid_value: fresh.json.accountid });
    expect(crmRow("nav_accountstatisticses", fresh.json.accountid)).toMatchObject({ nav_balancelcy: 20 });
  });
});
