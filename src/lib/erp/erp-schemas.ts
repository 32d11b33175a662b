import * as z from "zod";
import type { ErpTable } from "../sync/default-mappings";

/**
 * The ERP side of the synchronization: one zod schema per table, with the fields the default mappings
 * use (BEHAVIOUR §5, API.md "ERP records"). `id` is the ERP's No./Code; `modifiedAt` is set by the service.
 */
const text = (max: number) => z.string().trim().max(max, `must be at most ${max} characters`);
// Ids and codes are addressed in routes (/erp/{table}/{id}): no "/", "\\", "?", "#", "%" or control characters,
// and not "." or "..", which a URL path cannot hold as a segment.
const addressable = (schema: z.ZodString) =>
  schema
    .regex(/^[^/\\?#%\u0000-\u001f\u007f]*$/, "must not contain / \\ ? # % or control characters")
    .refine((value) => value !== "." && value !== "..", 'must not be "." or ".."');
const code = addressable(text(20));
const id = addressable(z.string().trim().min(1, "is required").max(20, "must be 1-20 characters"));
const money = z.number().finite("must be a number").min(0, "must not be negative");

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
