import { DataverseError, type EntityStore } from "./entity-store";
import type { Row } from "./odata-query";

/**
 * Sales order behaviour of Dynamics 365 Sales that a client meets:
 * - states (salesorder statecode/statuscode, https://learn.microsoft.com/dynamics365/sales/developer/entities/salesorder):
 *   Active 0 (New 1, Pending 2), Submitted 1 (In Progress 3), Canceled 2 (No Money 4), Fulfilled 3 (Complete
 *   100001, Partial 100002), Invoiced 4 (Invoiced 100003). A status reason must belong to its state.
 * - Fulfilled is reached through the FulfillSalesOrder action (an orderclose activity and a status), Canceled
 *   through CancelSalesOrder; a plain update may move an order between Active and Submitted, and to Invoiced
 *   (what Business Central's integration does when the ERP order is invoiced). A closed order (Canceled,
 *   Fulfilled, Invoiced) takes no further change.
 * - Totals: a line's extended amount is quantity x price per unit - manual discount; the order's line item
 *   total is their sum, and its total is that minus the order discount plus freight and tax. Dataverse's
 *   price calculation does this on every line write.
 * Unverified: the exact error codes and texts Dataverse answers for refused state changes (documented
 * behaviour, our wording).
 */
export const orderStates = { active: 0, submitted: 1, canceled: 2, fulfilled: 3, invoiced: 4 } as const;
const statusesOf: Record<number, number[]> = { 0: [1, 2], 1: [3], 2: [4], 3: [100001, 100002], 4: [100003] };
const defaultStatus: Record<number, number> = { 0: 1, 1: 3, 2: 4, 3: 100001, 4: 100003 };
const closed = new Set<number>([orderStates.canceled, orderStates.fulfilled, orderStates.invoiced]);

const stateError = (message: string) => new DataverseError(400, "0x80040203", message);

/** Checks an update of a sales order, and completes a state change with its default status reason. */
export function checkOrderUpdate(existing: Row, properties: Row): Row {
  const from = Number(existing.statecode ?? 0);
  const changesState = properties.statecode !== undefined && Number(properties.statecode) !== from;
  if (closed.has(from)) {
    throw stateError(`The sales order ${String(existing.ordernumber)} is closed (${stateName(from)}) and cannot be changed.`);
  }
  if (!changesState) {
    if (properties.statuscode !== undefined && !statusesOf[from]!.includes(Number(properties.statuscode))) {
      throw stateError(`${String(properties.statuscode)} is not a valid status code for state code SalesOrderState.${stateName(from)} on salesorder.`);
    }
    return properties;
  }
  const to = Number(properties.statecode);
  if (to === orderStates.fulfilled) throw stateError("A sales order is fulfilled with the FulfillSalesOrder message, not by setting its state.");
  if (to === orderStates.canceled) throw stateError("A sales order is canceled with the CancelSalesOrder message, not by setting its state.");
  if (!(to in statusesOf)) throw stateError(`${String(properties.statecode)} is not a valid state code on salesorder.`);
  const status = properties.statuscode === undefined ? defaultStatus[to]! : Number(properties.statuscode);
  if (!statusesOf[to]!.includes(status))
    throw stateError(`${status} is not a valid status code for state code SalesOrderState.${stateName(to)} on salesorder.`);
  return {
    ...properties,
    statecode: to,
    statuscode: status,
    ...(to === orderStates.submitted && !existing.submitdate && { submitdate: new Date().toISOString() }),
  };
}

/** POST /FulfillSalesOrder { OrderClose: { "salesorderid@odata.bind": "/salesorders(id)", subject }, Status }. */
export function fulfillSalesOrder(store: EntityStore, body: Row, userId: string): void {
  const close = body.OrderClose as Row | undefined;
  if (!close || typeof close !== "object") throw new DataverseError(400, "0x80040203", "Required parameter 'OrderClose' is missing.");
  if (body.Status === undefined) throw new DataverseError(400, "0x80040203", "Required parameter 'Status' is missing.");
  const reference = /^\/?salesorders\(([0-9a-f-]{36})\)$/i.exec(String(close["salesorderid@odata.bind"] ?? ""));
  if (!reference) throw new DataverseError(400, "0x80040203", "The order close activity must refer to its sales order (salesorderid@odata.bind).");
  const order = store.get("salesorders", reference[1]!.toLowerCase());
  if (!order) throw new DataverseError(404, "0x80040217", `salesorder With Id = ${reference[1]} Does Not Exist`);
  const from = Number(order.statecode ?? 0);
  if (closed.has(from)) throw stateError(`The sales order ${String(order.ordernumber)} is closed (${stateName(from)}) and cannot be fulfilled.`);
  const status = Number(body.Status) === -1 ? defaultStatus[orderStates.fulfilled]! : Number(body.Status);
  if (!statusesOf[orderStates.fulfilled]!.includes(status)) {
    throw stateError(`${status} is not a valid status code for state code SalesOrderState.Fulfilled on salesorder.`);
  }
  store.update(
    "salesorders",
    String(order.salesorderid),
    { statecode: orderStates.fulfilled, statuscode: status, datefulfilled: new Date().toISOString() },
    userId,
  );
}

/** Recomputes a line's extended amount and its order's totals, as Dataverse's price calculation does. */
export function recomputeOrderTotals(store: EntityStore, orderId: string | undefined, userId: string): void {
  if (!orderId) return;
  const order = store.get("salesorders", orderId.toLowerCase());
  if (!order) return;
  let lineTotal = 0;
  let lineDiscounts = 0;
  let tax = 0;
  for (const line of store.rows("salesorderdetails").filter((row) => String(row._salesorderid_value ?? "").toLowerCase() === orderId.toLowerCase())) {
    const base = round(Number(line.quantity ?? 0) * Number(line.priceperunit ?? 0));
    const extended = round(base - Number(line.manualdiscountamount ?? 0) + Number(line.tax ?? 0));
    if (line.baseamount !== base || line.extendedamount !== extended) {
      store.update("salesorderdetails", String(line.salesorderdetailid), { baseamount: base, extendedamount: extended }, userId);
    }
    lineTotal += base - Number(line.manualdiscountamount ?? 0);
    lineDiscounts += Number(line.manualdiscountamount ?? 0);
    tax += Number(line.tax ?? 0);
  }
  const total = round(lineTotal - Number(order.discountamount ?? 0) + Number(order.freightamount ?? 0) + tax);
  store.update(
    "salesorders",
    orderId.toLowerCase(),
    {
      totallineitemamount: round(lineTotal),
      totaldiscountamount: round(lineDiscounts + Number(order.discountamount ?? 0)),
      totaltax: round(tax),
      totalamount: total,
    },
    userId,
  );
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function stateName(state: number): string {
  return ["Active", "Submitted", "Canceled", "Fulfilled", "Invoiced"][state] ?? String(state);
}
