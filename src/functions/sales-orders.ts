import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, respond } from "../lib/http/respond";
import { submittedQuery } from "../lib/sales-orders/sales-order-service";
import type { Services } from "../lib/services";

const base = "companies/{company}/sales-orders";

export function salesOrderFunctions(services: () => Services): FunctionDefinition[] {
  /** The ERP's "Sales Orders - Dynamics 365 Sales" page: orders submitted in CRM, with customer and totals. */
  async function listSubmittedOrders(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () =>
      json(200, await services().salesOrders.listSubmitted(request.params.company ?? "", Object.fromEntries(request.query.entries()))),
    );
  }

  /** "Create in ERP": the ERP order with its lines, coupled to the CRM order. */
  async function createOrderInErp(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const company = request.params.company ?? "";
      const { order } = await services().salesOrders.createInErp(company, request.params.crmOrderId ?? "");
      return json(201, order, { location: `/api/companies/${company}/erp/salesOrders?top=1` });
    });
  }

  return [
    {
      name: "sales-orders-submitted",
      trigger: "http",
      route: `${base}/submitted`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Sales orders submitted in Dynamics 365 Sales, with customer, totals and the ERP order made from each",
      handler: listSubmittedOrders,
      contract: {
        query: submittedQuery,
        responses: {
          200: "{ value: submitted orders, continuationToken? }",
          400: "Invalid query",
          404: "No setup",
          409: "Disabled, or sales order integration off",
        },
      },
    },
    {
      name: "sales-order-create-in-erp",
      trigger: "http",
      route: `${base}/{crmOrderId}/create-in-erp`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Create the ERP sales order from a submitted Dynamics 365 Sales order, coupled to it",
      handler: createOrderInErp,
      contract: {
        responses: {
          201: "The ERP sales order",
          400: "Not an order id",
          404: "No such order",
          409: "Disabled, integration off, not submitted, or already created",
          422: "The customer or a product is not coupled (each reason listed)",
        },
      },
    },
  ];
}
