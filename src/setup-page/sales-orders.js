// The ERP's "Sales Orders - Dynamics 365 Sales" page: orders submitted in CRM, each with "Create in ERP".

import { $, ApiError, api, button, companyPath, say, state, when } from "./page-core.js";

const orders = { token: undefined };
const money = (value) => value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export async function loadOrders(more = false) {
  const body = $("orders").tBodies[0];
  const note = $("orders-note");
  if (!more) {
    body.replaceChildren();
    orders.token = undefined;
  }
  $("orders-more").hidden = true;
  note.hidden = true;
  if (!state.view) return;
  if (!state.view.isEnabled || !state.view.salesOrderIntegrationEnabled) {
    note.textContent = "Sales order integration is not enabled: turn it on in the advanced settings to see the orders submitted in Dynamics 365 Sales.";
    note.hidden = false;
    return;
  }
  try {
    const query = new URLSearchParams({ top: "25" });
    if (more && orders.token) query.set("continuationToken", orders.token);
    const page = await api("GET", companyPath(`/sales-orders/submitted?${query}`));
    for (const order of page.value) addOrderRow(body, order);
    if (!more && page.value.length === 0) body.insertRow().insertCell().textContent = "No order is submitted in Dynamics 365 Sales.";
    orders.token = page.continuationToken;
    $("orders-more").hidden = !page.continuationToken;
  } catch (error) {
    note.textContent = error.message;
    note.hidden = false;
  }
}

function addOrderRow(body, order) {
  const row = body.insertRow();
  row.dataset.order = order.crmOrderId;
  row.insertCell().textContent = order.orderNumber;
  row.insertCell().textContent = order.name;
  row.insertCell().textContent = order.customer.erpNo ?? `not coupled (${order.customer.crmId})`;
  row.insertCell().textContent = when(order.submittedAt);
  row.insertCell().textContent = order.requestedDeliveryDate ?? "";
  row.insertCell().textContent = `${money(order.totalAmount)}${order.currencyCode ? ` ${order.currencyCode}` : ""}`;
  const erp = row.insertCell();
  erp.textContent = order.erpOrder ? `${order.erpOrder.no}${order.erpOrder.deleted ? " (deleted in the ERP)" : ""}` : "";
  const actions = row.insertCell();
  if (order.erpOrder && !order.erpOrder.deleted) return;
  actions.append(
    button(
      "Create in ERP",
      async () => {
        try {
          const created = await api("POST", companyPath(`/sales-orders/${encodeURIComponent(order.crmOrderId)}/create-in-erp`));
          say(`Dynamics 365 Sales order ${order.orderNumber} was created in the ERP as sales order ${created.id} with ${created.lines.length} line(s).`);
          await loadOrders();
        } catch (error) {
          // Every reason (customer, products) is in the detail, next to the order it concerns.
          const reason = error instanceof ApiError ? (error.problem.detail ?? error.message) : error.message;
          say(reason);
          const slot = Object.assign(document.createElement("span"), { className: "error", textContent: reason, tabIndex: -1 });
          actions.querySelector(".error")?.remove();
          actions.append(slot);
          slot.focus();
        }
      },
      `Create in ERP: order ${order.orderNumber}`,
    ),
  );
}

export function startOrders() {
  $("orders-refresh").addEventListener("click", () => loadOrders());
  $("orders-more").addEventListener("click", () => loadOrders(true));
}
