import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DataverseSimulator, startDataverseSimulator } from "../simulator/simulator";
import { demoUsers, webApiAs } from "../support/raw-dataverse";

// Sales order states and totals as a client meets them (learn.microsoft.com/dynamics365/sales/developer/entities/salesorder;
// FulfillSalesOrder: learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/fulfillsalesorder).
let simulator: DataverseSimulator;
let api: Awaited<ReturnType<typeof webApiAs>>;
beforeAll(async () => {
  simulator = await startDataverseSimulator();
  api = await webApiAs(simulator, demoUsers.integration);
});
afterAll(() => simulator.close());

async function order(): Promise<string> {
  const account = await api("POST", "accounts", { body: { name: "Order customer" }, headers: { prefer: "return=representation" } });
  const created = await api("POST", "salesorders", {
    body: { name: "Order", "customerid_account@odata.bind": `/accounts(${account.json.accountid})`, discountamount: 10, freightamount: 5 },
    headers: { prefer: "return=representation" },
  });
  return created.json.salesorderid as string;
}

describe("sales orders", () => {
  it("keeps the totals of its lines: quantity x price - discount, then the order discount and freight", async () => {
    const id = await order();
    for (const [quantity, price, discount] of [
      [2, 100, 20],
      [1, 50, 0],
    ] as const) {
      const line = await api("POST", "salesorderdetails", {
        body: {
          "salesorderid@odata.bind": `/salesorders(${id})`,
          quantity,
          priceperunit: price,
          manualdiscountamount: discount,
          isproductoverridden: true,
          productdescription: "x",
        },
      });
      expect(line.status).toBe(204);
    }
    const read = await api("GET", `salesorders(${id})?$select=totallineitemamount,totalamount,totaldiscountamount`);
    expect(read.json).toMatchObject({ totallineitemamount: 230, totaldiscountamount: 30, totalamount: 225 });
    const lines = await api("GET", `salesorderdetails?$select=sequencenumber,extendedamount&$filter=_salesorderid_value eq ${id}&$orderby=sequencenumber asc`);
    expect(lines.json.value.map((line: { sequencenumber: number; extendedamount: number }) => [line.sequencenumber, line.extendedamount])).toEqual([
      [1, 180],
      [2, 50],
    ]);
  });

  it("is submitted and invoiced by update, fulfilled only with FulfillSalesOrder, and takes no change once closed", async () => {
    const id = await order();
    expect((await api("PATCH", `salesorders(${id})`, { body: { statecode: 1 } })).status).toBe(204);
    expect((await api("GET", `salesorders(${id})?$select=statecode,statuscode`)).json).toMatchObject({ statecode: 1, statuscode: 3 });
    expect((await api("PATCH", `salesorders(${id})`, { body: { statuscode: 100001 } })).status).toBe(400);
    expect((await api("PATCH", `salesorders(${id})`, { body: { statecode: 3, statuscode: 100001 } })).status).toBe(400);
    const fulfilled = await api("POST", "FulfillSalesOrder", {
      body: { OrderClose: { subject: "Shipped", "salesorderid@odata.bind": `/salesorders(${id})` }, Status: 100001 },
    });
    expect(fulfilled.status).toBe(204);
    expect((await api("GET", `salesorders(${id})?$select=statecode,statuscode`)).json).toMatchObject({ statecode: 3, statuscode: 100001 });
    expect((await api("PATCH", `salesorders(${id})`, { body: { name: "Renamed" } })).status).toBe(400);
    expect(
      (await api("POST", "FulfillSalesOrder", { body: { OrderClose: { "salesorderid@odata.bind": `/salesorders(${id})` }, Status: 100001 } })).status,
    ).toBe(400);

    const other = await order();
    expect((await api("PATCH", `salesorders(${other})`, { body: { statecode: 4, statuscode: 100003 } })).status).toBe(204);
    expect((await api("POST", "FulfillSalesOrder", { body: { OrderClose: {}, Status: 100001 } })).status).toBe(400);
    expect((await api("POST", "FulfillSalesOrder", { body: { OrderClose: { "salesorderid@odata.bind": `/salesorders(${other})` }, Status: 3 } })).status).toBe(
      400,
    );
  });
});
