import type { ErpFields } from "../model/erp-schemas";
import { companyMessages } from "../model/company";

/**
 * Submitted Dynamics 365 Sales orders into ERP sales orders, pure (BC's "CRM Sales Order to Sales Order"):
 * the order's customer, products, currency and owner must be coupled ERP records, and what cannot be
 * carried over is said, never dropped.
 */
export const salesOrderMapping = "SALESORDER-ORDER";

/** Dataverse salesorder states (statecode) and the status reasons used here (statuscode). */
export const orderState = { active: 0, submitted: 1, canceled: 2, fulfilled: 3, invoiced: 4 } as const;
export const orderStatus = { inProgress: 3, complete: 100001, invoiced: 100003 } as const;

export const crmOrderColumns = [
  "salesorderid",
  "name",
  "ordernumber",
  "_customerid_value",
  "_transactioncurrencyid_value",
  "_ownerid_value",
  "totalamount",
  "totallineitemamount",
  "totaldiscountamount",
  "totaltax",
  "submitdate",
  "requestdeliveryby",
  "statecode",
  "statuscode",
  "modifiedon",
];
export const crmLineColumns = [
  "salesorderdetailid",
  "_salesorderid_value",
  "_productid_value",
  "_uomid_value",
  "productdescription",
  "isproductoverridden",
  "quantity",
  "priceperunit",
  "manualdiscountamount",
  "lineitemnumber",
  "sequencenumber",
];

export type CrmRow = Record<string, unknown>;

/** CRM id -> ERP code, per kind of record an order refers to. */
export interface OrderLookups {
  customers: Map<string, string>;
  items: Map<string, string>;
  resources: Map<string, string>;
  currencies: Map<string, string>;
  salespeople: Map<string, string>;
  /** uom id -> its name (the ERP unit of measure code). */
  units: Map<string, string>;
  /** The organization's base currency: an order in it is in the ERP's local currency (blank code). */
  baseCurrencyId?: string;
}

export const salesOrderMessages = {
  integrationOff:
    "Sales order integration with Dynamics 365 Sales is not enabled. Enable it in the connection's advanced settings (salesOrderIntegrationEnabled) " +
    "before you create sales orders from Dynamics 365 Sales.",
  notEnabled: companyMessages.notEnabled,
  noSuchOrder: (id: string) => `There is no sales order ${id} in Dynamics 365 Sales.`,
  otherCompany: (number: string) => `The Dynamics 365 Sales order ${number} belongs to another ERP company synchronized with this organization.`,
  changedMeanwhile: (number: string) => `The Dynamics 365 Sales order ${number} was changed while it was being created in the ERP. Try again.`,
  notSubmitted: (number: string) => `The Dynamics 365 Sales order ${number} is not submitted, so it cannot be created in the ERP.`,
  alreadyCreated: (number: string, erpNo: string) => `The Dynamics 365 Sales order ${number} was already created in the ERP as sales order ${erpNo}.`,
  numberTaken: (number: string, erpNo: string) =>
    `The Dynamics 365 Sales order ${number} cannot be created in the ERP: its order number ${erpNo} is taken by another ERP sales order.`,
  invalidLine: (number: string, problem: string) => `Dynamics 365 Sales order ${number} cannot be an ERP sales order: ${problem}.`,
  discountOverAmount: (number: string, line: number) => `Line ${line} of Dynamics 365 Sales order ${number} has a discount larger than its amount.`,
  customerNotCoupled: (number: string) =>
    `The customer of Dynamics 365 Sales order ${number} is not coupled to an ERP customer. Couple the account (or synchronize customers) first.`,
  productNotCoupled: (number: string, line: number, product: string) =>
    `Line ${line} of Dynamics 365 Sales order ${number}: the product ${product} is not coupled to an ERP item or resource. Couple it first.`,
  writeInProduct: (number: string, line: number) =>
    `Line ${line} of Dynamics 365 Sales order ${number} is a write-in product, which has no ERP item or resource to sell. Replace it with an existing product.`,
  currencyNotCoupled: (number: string) => `The currency of Dynamics 365 Sales order ${number} is not coupled to an ERP currency.`,
  noLines: (number: string) => `Dynamics 365 Sales order ${number} has no lines.`,
  deletedInErp: (erpNo: string, number: string) =>
    `The ERP sales order ${erpNo} created from Dynamics 365 Sales order ${number} was deleted in the ERP; the CRM order stays as it is. Cancel it in ` +
    `Dynamics 365 Sales, or create it in the ERP again.`,
} as const;

const dateOf = (value: unknown): string | undefined => (typeof value === "string" && value.length >= 10 ? value.slice(0, 10) : undefined);
const numberOf = (value: unknown): number => (typeof value === "number" ? value : Number(value ?? 0));
const idOf = (value: unknown): string => String(value ?? "").toLowerCase();

/** The ERP order for a submitted CRM order and its lines, or every reason it cannot be made. */
export function toErpOrder(
  order: CrmRow,
  lines: CrmRow[],
  lookups: OrderLookups,
  today: string,
  /** The order's ERP number (storage/order-numbers.ts gives each CRM order its own). */
  erpOrderNo: string,
): { order: ErpFields } | { problems: string[] } {
  const number = String(order.ordernumber ?? order.salesorderid);
  const problems: string[] = [];
  const customerNo = lookups.customers.get(idOf(order._customerid_value));
  if (!customerNo) problems.push(salesOrderMessages.customerNotCoupled(number));
  const currencyId = idOf(order._transactioncurrencyid_value);
  const currencyCode = currencyId && currencyId !== lookups.baseCurrencyId?.toLowerCase() ? lookups.currencies.get(currencyId) : undefined;
  if (currencyId && currencyId !== lookups.baseCurrencyId?.toLowerCase() && !currencyCode) problems.push(salesOrderMessages.currencyNotCoupled(number));
  if (lines.length === 0) problems.push(salesOrderMessages.noLines(number));
  const sorted = [...lines].sort((a, b) => numberOf(a.lineitemnumber ?? a.sequencenumber) - numberOf(b.lineitemnumber ?? b.sequencenumber));
  const erpLines = sorted.flatMap((line, index) => {
    const lineNo = (index + 1) * 10000;
    const position = index + 1;
    if (line.isproductoverridden === true || !line._productid_value) {
      problems.push(salesOrderMessages.writeInProduct(number, position));
      return [];
    }
    const productId = idOf(line._productid_value);
    const item = lookups.items.get(productId);
    const resource = item ? undefined : lookups.resources.get(productId);
    if (!item && !resource) {
      problems.push(salesOrderMessages.productNotCoupled(number, position, String(line.productdescription ?? productId)));
      return [];
    }
    const quantity = numberOf(line.quantity);
    const unitPrice = numberOf(line.priceperunit);
    const discount = numberOf(line.manualdiscountamount);
    if (!(quantity > 0)) problems.push(salesOrderMessages.invalidLine(number, `line ${position}: the quantity must be more than 0`));
    else if (discount > quantity * unitPrice) problems.push(salesOrderMessages.discountOverAmount(number, position));
    const unit = lookups.units.get(idOf(line._uomid_value));
    return [
      {
        lineNo,
        type: item ? "Item" : "Resource",
        no: item ?? resource!,
        ...(typeof line.productdescription === "string" && line.productdescription !== "" && { description: line.productdescription.slice(0, 100) }),
        quantity,
        unitPrice,
        ...(discount > 0 && { lineDiscountAmount: discount }),
        ...(unit && { unitOfMeasure: unit }),
      },
    ];
  });
  if (problems.length > 0) return { problems };
  const salesperson = lookups.salespeople.get(idOf(order._ownerid_value));
  const requested = dateOf(order.requestdeliveryby);
  return {
    order: {
      id: erpOrderNo,
      customerNo: customerNo!,
      ...(currencyCode && { currencyCode }),
      ...(salesperson && { salespersonCode: salesperson }),
      orderDate: dateOf(order.submitdate) ?? today,
      ...(requested && { requestedDeliveryDate: requested }),
      externalDocumentNo: number.slice(0, 35),
      crmOrderId: idOf(order.salesorderid),
      lines: erpLines,
    },
  };
}

/**
 * What the CRM order should become for the ERP order's state; undefined when there is nothing to do. A closed
 * CRM order (canceled, fulfilled or invoiced, by this service or by a user) is left as it is: Dataverse takes
 * no change to it, so an invoice after the shipment is not reported once the order is fulfilled.
 */
export function crmStatusChange(erpOrder: ErpFields, crmOrder: CrmRow): "fulfill" | "invoice" | undefined {
  const state = numberOf(crmOrder.statecode);
  if (state !== orderState.active && state !== orderState.submitted) return undefined;
  if (erpOrder.invoiced === true) return "invoice";
  if (erpOrder.shipped === true) return "fulfill";
  return undefined;
}
