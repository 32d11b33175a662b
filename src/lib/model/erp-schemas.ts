import * as z from "zod";
import type { ErpTable } from "./erp-tables";

/**
 * The ERP side of the synchronization: one zod schema per table, with the fields the default mappings
 * use (BEHAVIOUR §5, API.md "ERP records"). `id` is the ERP's No./Code; `modifiedAt` is set by the service.
 */
const text = (max: number) => z.string().trim().max(max, `must be at most ${max} characters`);
// Ids and codes are addressed in routes (/erp/{table}/{id}): no "/", "\\", "?", "#", "%" or control characters,
// and not "." or "..", which a URL path cannot hold as a segment.
const addressable = (schema: z.ZodString) =>
  schema
    // Control characters are exactly what this refuses.
    // oxlint-disable-next-line no-control-regex
    .regex(/^[^/\\?#%\u0000-\u001f\u007f]*$/, "must not contain / \\ ? # % or control characters")
    .refine((value) => value !== "." && value !== "..", 'must not be "." or ".."');
const code = addressable(text(20));
const id = addressable(z.string().trim().min(1, "is required").max(20, "must be 1-20 characters"));
// Dataverse's Money columns hold at most 922,337,203,685,477: a larger amount could never be synchronized.
const moneyLimit = 922_337_203_685_477;
const money = z.number().finite("must be a number").min(0, "must not be negative").max(moneyLimit, "must be at most 922,337,203,685,477");

const customers = z.strictObject({
  id,
  name: z.string().trim().min(1, "is required").max(100, "must be at most 100 characters"),
  address: text(100).optional(),
  address2: text(50).optional(),
  city: text(30).optional(),
  postCode: text(20).optional(),
  county: text(30).optional(),
  countryRegionCode: text(10).optional(),
  phoneNo: text(30).optional(),
  faxNo: text(30).optional(),
  email: z.email("must be an email address").max(80).optional(),
  homePage: text(80).optional(),
  currencyCode: code.optional(),
  salespersonCode: code.optional(),
  paymentTermsCode: code.optional(),
  shipmentMethodCode: code.optional(),
  shippingAgentCode: code.optional(),
  creditLimit: money.optional(),
  primaryContactNo: code.optional(),
  blocked: z.enum(["", "Ship", "Invoice", "All"]).optional(),
});

const contacts = z.strictObject({
  id,
  type: z.enum(["Person", "Company"]).default("Person"),
  firstName: text(30).optional(),
  surname: text(30).optional(),
  email: z.email("must be an email address").max(80).optional(),
  phoneNo: text(30).optional(),
  companyNo: code.optional(),
});

const items = z.strictObject({
  id,
  description: z.string().trim().min(1, "is required").max(100),
  unitPrice: money.optional(),
  unitOfMeasure: code.optional(),
  blocked: z.boolean().optional(),
});

const resources = z.strictObject({
  id,
  name: z.string().trim().min(1, "is required").max(100),
  unitPrice: money.optional(),
  unitOfMeasure: code.optional(),
});

const currencies = z.strictObject({
  id: z
    .string()
    .trim()
    .regex(/^[A-Z]{3}$/, "must be a 3-letter ISO currency code"),
  description: text(30).optional(),
  symbol: text(10).optional(),
  exchangeRate: z.number().positive("must be positive").optional(),
});

const unitsOfMeasure = z.strictObject({ id: code.min(1, "is required"), description: text(50).optional() });
const salespeople = z.strictObject({ id, name: text(50).optional(), email: z.email().max(80).optional(), phoneNo: text(30).optional() });
const customerPriceGroups = z.strictObject({ id, description: text(100).optional() });
const postedSalesInvoices = z.strictObject({
  id,
  description: text(100).optional(),
  customerNo: code,
  amount: money,
  dueDate: z.iso.date("must be a date (YYYY-MM-DD)").optional(),
});

const salesOrderLine = z.strictObject({
  lineNo: z.int("must be a whole number").min(1, "must be at least 1"),
  type: z.enum(["Item", "Resource"], 'must be "Item" or "Resource"'),
  no: id,
  description: text(100).optional(),
  quantity: z.number().finite("must be a number").positive("must be more than 0"),
  unitPrice: money,
  lineDiscountPercent: z.number().min(0, "must be 0 to 100").max(100, "must be 0 to 100").optional(),
  lineDiscountAmount: money.optional(),
  unitOfMeasure: code.optional(),
});

/**
 * A sales order (header and lines). `shipped` and `invoiced` are set by the ERP when the whole order is; the
 * service reports them to the CRM order it was created from (`crmOrderId`, set by the service).
 */
const salesOrders = z
  .strictObject({
    id,
    customerNo: code.min(1, "is required"),
    currencyCode: code.optional(),
    salespersonCode: code.optional(),
    orderDate: z.iso.date("must be a date (YYYY-MM-DD)"),
    requestedDeliveryDate: z.iso.date("must be a date (YYYY-MM-DD)").optional(),
    externalDocumentNo: text(35).optional(),
    shipped: z.boolean("must be true or false").optional(),
    invoiced: z.boolean("must be true or false").optional(),
    crmOrderId: z.uuid("must be the CRM order's id (a GUID)").optional(),
    lines: z.array(salesOrderLine).min(1, "must have at least one line").max(100, "must have at most 100 lines"),
  })
  .superRefine((order, context) => {
    const seen = new Set<number>();
    order.lines.forEach((line, index) => {
      if (seen.has(line.lineNo)) context.addIssue({ code: "custom", path: ["lines", index, "lineNo"], message: "repeats the line no. of another line" });
      seen.add(line.lineNo);
    });
  });

const amount = z
  .number()
  .finite("must be a number")
  .min(-moneyLimit, "must be at least -922,337,203,685,477")
  .max(moneyLimit, "must be at most 922,337,203,685,477");
/** The ERP's customer figures (BC's customer statistics, in local currency) for the CUSTOMER STATISTICS job. */
const customerStatistics = z.strictObject({
  id,
  balance: amount.optional(),
  outstandingOrders: amount.optional(),
  shippedNotInvoiced: amount.optional(),
  outstandingInvoices: amount.optional(),
  total: amount.optional(),
  overdueAmounts: amount.optional(),
  overdueAsOf: z.iso.date("must be a date (YYYY-MM-DD)").optional(),
  totalSales: amount.optional(),
  invoicedPrepaymentAmount: amount.optional(),
});

/** An item's price in a customer price group (BC's Sales Price with Sales Type "Customer Price Group"). */
const salesPrices = z.strictObject({
  id,
  itemNo: code.min(1, "is required"),
  customerPriceGroup: code.min(1, "is required"),
  unitPrice: money,
  unitOfMeasure: code.optional(),
});

/** An item line of a posted sales invoice; `id` is the ERP's key of the line (e.g. "103001-10000"). */
const postedSalesInvoiceLines = z.strictObject({
  id,
  documentNo: code.min(1, "is required"),
  lineNo: z.int("must be a whole number").min(1, "must be at least 1").max(2147483647),
  itemNo: code.min(1, "is required"),
  description: text(100).optional(),
  quantity: z.number().finite("must be a number"),
  unitPrice: money,
  lineDiscountAmount: money.optional(),
});

/**
 * A code the ERP shares with a CRM option set (payment terms, shipment methods, shipping agents): which option
 * value it stands for is the admin's choice (`crmOptionValue`), as on BC's option mapping page.
 */
const optionCode = z.strictObject({
  id: code.min(1, "is required"),
  description: text(100).optional(),
  crmOptionValue: z.int("must be the CRM option's value (a whole number)").min(0).max(2147483647).optional(),
});

export const erpSchemas = {
  customers,
  contacts,
  items,
  resources,
  currencies,
  unitsOfMeasure,
  salespeople,
  customerPriceGroups,
  postedSalesInvoices,
  salesOrders,
  customerStatistics,
  salesPrices,
  postedSalesInvoiceLines,
  paymentTerms: optionCode,
  shipmentMethods: optionCode,
  shippingAgents: optionCode,
} satisfies Record<ErpTable, z.ZodType>;

export type ErpFields = Record<string, unknown> & { id: string };

/** A stored ERP record: its fields plus what the service stamps. */
export interface ErpRecord {
  id: string;
  fields: ErpFields;
  /** When the record last changed (ISO, unique per table thanks to a sequence suffix). */
  modifiedAt: string;
  /** Who changed it: "erp" through the API, "crm-sync" when the sync wrote it (never echoed back). */
  modifiedBy: "erp" | "crm-sync";
  deleted: boolean;
}

export const maxRecordsPerRequest = 1000;

/**
 * A record is stored as one JSON text property, which Azure Tables caps at 64 KiB (32,768 UTF-16 characters):
 * a larger record (a sales order of 100 long lines can be) is refused up front instead of failing in storage.
 */
export const maxRecordCharacters = 30_000;

/** A PUT of ERP records as the API documents it (each record is checked against its own table's schema). */
export const erpRecordsPutBody = z
  .array(z.union(Object.values(erpSchemas)))
  .min(1)
  .max(maxRecordsPerRequest);
