// Over 250 lines: the default setup is data: every mapping with its field mappings.
/**
 * The default integration table mappings (BEHAVIOUR.md §5, after the ERP's "CRM Setup Defaults",
 * codeunit 5334): which ERP table pairs with which CRM entity set, in which direction, with which
 * filters, field mappings and schedule.
 */
import type { ErpTable, OptionTable } from "../model/erp-tables";

export type Direction = "both" | "toCrm" | "fromCrm";

export interface FieldMapping {
  erp: string;
  crm: string;
  direction: Direction;
  /** The CRM value is a lookup to the entity coupled through this mapping (e.g. ownerid via SALESPEOPLE). */
  lookup?: { mapping: MappingName; entitySet: string; navigation: string; required?: boolean };
  /** Sent when the CRM row is created only: Dataverse does not let it change afterwards (not valid for update). */
  createOnly?: boolean;
  /** Not valid for create in Dataverse (e.g. invoice totals): sent in an update right after the row is created. */
  afterCreate?: boolean;
  /** The CRM column is an option set; the ERP code maps to its value through this ERP table (BC's option mapping). */
  option?: OptionTable;
  /** BC's field mapping Status: a disabled field is neither read nor written (default enabled). */
  enabled?: boolean;
  /** BC's "Constant Value": written to the destination of a one-way field instead of the source's value. */
  constant?: string | number | boolean | null;
}

/** BC's "Integration Update Conflict Resolution": when both sides changed the same field. */
export const updateConflictResolutions = ["none", "sendUpdateToIntegration", "getUpdateFromIntegration"] as const;
export type UpdateConflictResolution = (typeof updateConflictResolutions)[number];
/** BC's "Integration Deletion Conflict Resolution": when a coupled record was deleted on one side. */
export const deletionConflictResolutions = ["none", "removeCoupling", "restoreRecords"] as const;
export type DeletionConflictResolution = (typeof deletionConflictResolutions)[number];

/** A condition on ERP records: equals / differs from a value, or is present. */
export interface ErpCondition {
  field: string;
  op: "eq" | "ne" | "present";
  value?: string | number | boolean;
}

export const mappingNames = [
  "SALESPEOPLE",
  "CURRENCY",
  "UNIT OF MEASURE",
  "CUSTOMER",
  "CONTACT",
  "ITEM-PRODUCT",
  "RESOURCE-PRODUCT",
  "CUSTPRCGRP-PRICE",
  "POSTEDSALESINV-INV",
  "SALESPRC-PRODPRICE",
  "POSTEDSALESLINE-INV",
] as const;
export type MappingName = (typeof mappingNames)[number];

export interface MappingDefinition {
  name: MappingName;
  erpTable: ErpTable;
  crmEntitySet: string;
  crmKey: string;
  /** The column whose value names the row in messages. */
  crmNameField: string;
  direction: Direction;
  /** OData $filter on the CRM side. */
  crmFilter?: string;
  erpFilter: ErpCondition[];
  /** Skip records that are not coupled yet (counted Skipped). */
  onlyCoupledRecords: boolean;
  minutesBetweenRuns: number;
  /** Full synchronization runs mappings in this order: what others look up goes first. */
  dependencyOrder: number;
  fields: FieldMapping[];
  /** Values every created CRM row gets (e.g. the account's customertypecode = Customer). */
  crmDefaults: Record<string, unknown>;
  updateConflictResolution: UpdateConflictResolution;
  deletionConflictResolution: DeletionConflictResolution;
  /** Failed attempts before a record is Skipped (BC "CRM Synch. Skipped Records"). */
  maxAttempts: number;
  /**
   * An uncoupled CRM row is coupled to the uncoupled ERP record whose field has the same value (case
   * insensitive) instead of creating a second one: salespeople by email, items by number.
   */
  matchOn?: { erp: string; crm: string };
}

/** What every default mapping starts with, as BC's defaults: conflicts and deletions fail and are logged. */
const resolutionDefaults = { updateConflictResolution: "none", deletionConflictResolution: "none", maxAttempts: 5 } as const;

const both = (erp: string, crm: string): FieldMapping => ({ erp, crm, direction: "both" });
const toCrm = (erp: string, crm: string): FieldMapping => ({ erp, crm, direction: "toCrm" });
const fromCrm = (erp: string, crm: string): FieldMapping => ({ erp, crm, direction: "fromCrm" });

// Dataverse option values: account customertypecode 3 = Customer; statecode 0 = Active;
// product producttypecode 1 = Sales Inventory, 3 = Services.
export const defaultMappings: readonly MappingDefinition[] = [
  {
    name: "SALESPEOPLE",
    erpTable: "salespeople",
    crmEntitySet: "systemusers",
    crmKey: "systemuserid",
    crmNameField: "fullname",
    direction: "fromCrm",
    // Disabled, unlicensed, integration and application (non-interactive) users never become salespeople.
    crmFilter: "isdisabled eq false and islicensed eq true and isintegrationuser eq false and accessmode ne 4 and applicationid eq null",
    erpFilter: [],
    matchOn: { erp: "email", crm: "internalemailaddress" },
    onlyCoupledRecords: true,
    minutesBetweenRuns: 30,
    dependencyOrder: 1,
    fields: [fromCrm("name", "fullname"), fromCrm("email", "internalemailaddress"), fromCrm("phoneNo", "mobilephone")],
    crmDefaults: {},
    ...resolutionDefaults,
  },
  {
    name: "CURRENCY",
    erpTable: "currencies",
    crmEntitySet: "transactioncurrencies",
    crmKey: "transactioncurrencyid",
    crmNameField: "isocurrencycode",
    direction: "toCrm",
    erpFilter: [],
    onlyCoupledRecords: false,
    minutesBetweenRuns: 2,
    dependencyOrder: 2,
    fields: [toCrm("id", "isocurrencycode"), toCrm("description", "currencyname"), toCrm("symbol", "currencysymbol"), toCrm("exchangeRate", "exchangerate")],
    crmDefaults: { currencyprecision: 2 },
    ...resolutionDefaults,
  },
  {
    name: "UNIT OF MEASURE",
    erpTable: "unitsOfMeasure",
    crmEntitySet: "uomschedules",
    crmKey: "uomscheduleid",
    crmNameField: "name",
    direction: "toCrm",
    erpFilter: [],
    onlyCoupledRecords: false,
    minutesBetweenRuns: 2,
    dependencyOrder: 3,
    // A unit group needs its base unit's name when it is created (uomschedule.baseuomname, SystemRequired).
    fields: [toCrm("id", "name"), toCrm("description", "description"), { ...toCrm("id", "baseuomname"), createOnly: true }],
    crmDefaults: {},
    ...resolutionDefaults,
  },
  {
    name: "CUSTOMER",
    erpTable: "customers",
    crmEntitySet: "accounts",
    crmKey: "accountid",
    crmNameField: "name",
    direction: "both",
    crmFilter: "statecode eq 0 and customertypecode eq 3",
    // Customers blocked for everything are not sent (BC's CUSTOMER table filter).
    erpFilter: [{ field: "blocked", op: "ne", value: "All" }],
    onlyCoupledRecords: false,
    minutesBetweenRuns: 2,
    dependencyOrder: 4,
    fields: [
      both("name", "name"),
      both("address", "address1_line1"),
      both("address2", "address1_line2"),
      both("postCode", "address1_postalcode"),
      both("city", "address1_city"),
      both("countryRegionCode", "address1_country"),
      both("county", "address1_stateorprovince"),
      both("email", "emailaddress1"),
      both("faxNo", "fax"),
      both("homePage", "websiteurl"),
      both("phoneNo", "telephone1"),
      toCrm("creditLimit", "creditlimit"),
      {
        ...toCrm("currencyCode", "_transactioncurrencyid_value"),
        lookup: { mapping: "CURRENCY", entitySet: "transactioncurrencies", navigation: "transactioncurrencyid" },
      },
      { ...both("salespersonCode", "_ownerid_value"), lookup: { mapping: "SALESPEOPLE", entitySet: "systemusers", navigation: "ownerid", required: true } },
      { ...both("primaryContactNo", "_primarycontactid_value"), lookup: { mapping: "CONTACT", entitySet: "contacts", navigation: "primarycontactid" } },
      // BC's option mappings: payment terms, shipment methods (freight terms) and shipping agents (shipping method).
      { ...both("paymentTermsCode", "paymenttermscode"), option: "paymentTerms" },
      { ...both("shipmentMethodCode", "address1_freighttermscode"), option: "shipmentMethods" },
      { ...both("shippingAgentCode", "address1_shippingmethodcode"), option: "shippingAgents" },
    ],
    crmDefaults: { customertypecode: 3 },
    ...resolutionDefaults,
  },
  {
    name: "CONTACT",
    erpTable: "contacts",
    crmEntitySet: "contacts",
    crmKey: "contactid",
    crmNameField: "fullname",
    direction: "both",
    crmFilter: "_parentcustomerid_value ne null and statecode eq 0",
    erpFilter: [
      { field: "type", op: "eq", value: "Person" },
      { field: "companyNo", op: "present" },
    ],
    onlyCoupledRecords: false,
    minutesBetweenRuns: 2,
    dependencyOrder: 5,
    fields: [
      both("firstName", "firstname"),
      both("surname", "lastname"),
      both("email", "emailaddress1"),
      both("phoneNo", "telephone1"),
      { ...both("companyNo", "_parentcustomerid_value"), lookup: { mapping: "CUSTOMER", entitySet: "accounts", navigation: "parentcustomerid_account" } },
    ],
    crmDefaults: {},
    ...resolutionDefaults,
  },
  {
    name: "ITEM-PRODUCT",
    erpTable: "items",
    crmEntitySet: "products",
    crmKey: "productid",
    crmNameField: "name",
    direction: "both",
    crmFilter: "producttypecode eq 1 and statecode eq 0",
    erpFilter: [{ field: "blocked", op: "ne", value: true }],
    matchOn: { erp: "id", crm: "productnumber" },
    onlyCoupledRecords: false,
    minutesBetweenRuns: 30,
    dependencyOrder: 6,
    fields: [
      both("description", "name"),
      both("id", "productnumber"),
      both("unitPrice", "price"),
      {
        ...toCrm("unitOfMeasure", "_defaultuomscheduleid_value"),
        lookup: { mapping: "UNIT OF MEASURE", entitySet: "uomschedules", navigation: "defaultuomscheduleid" },
      },
    ],
    crmDefaults: { producttypecode: 1 },
    ...resolutionDefaults,
  },
  {
    name: "RESOURCE-PRODUCT",
    erpTable: "resources",
    crmEntitySet: "products",
    crmKey: "productid",
    crmNameField: "name",
    direction: "both",
    crmFilter: "producttypecode eq 3 and statecode eq 0",
    erpFilter: [],
    matchOn: { erp: "id", crm: "productnumber" },
    onlyCoupledRecords: false,
    minutesBetweenRuns: 2,
    dependencyOrder: 7,
    fields: [
      both("name", "name"),
      both("id", "productnumber"),
      both("unitPrice", "price"),
      {
        ...toCrm("unitOfMeasure", "_defaultuomscheduleid_value"),
        lookup: { mapping: "UNIT OF MEASURE", entitySet: "uomschedules", navigation: "defaultuomscheduleid" },
      },
    ],
    crmDefaults: { producttypecode: 3 },
    ...resolutionDefaults,
  },
  {
    name: "CUSTPRCGRP-PRICE",
    erpTable: "customerPriceGroups",
    crmEntitySet: "pricelevels",
    crmKey: "pricelevelid",
    crmNameField: "name",
    direction: "toCrm",
    erpFilter: [],
    onlyCoupledRecords: false,
    minutesBetweenRuns: 30,
    dependencyOrder: 8,
    fields: [toCrm("id", "name"), toCrm("description", "description")],
    crmDefaults: {},
    ...resolutionDefaults,
  },
  {
    name: "POSTEDSALESINV-INV",
    erpTable: "postedSalesInvoices",
    crmEntitySet: "invoices",
    crmKey: "invoiceid",
    crmNameField: "name",
    direction: "toCrm",
    erpFilter: [],
    onlyCoupledRecords: false,
    minutesBetweenRuns: 30,
    dependencyOrder: 9,
    fields: [
      // invoicenumber can be set only on create; totalamount only by an update (Dataverse computes it otherwise).
      { ...toCrm("id", "invoicenumber"), createOnly: true },
      toCrm("description", "name"),
      { ...toCrm("amount", "totalamount"), afterCreate: true },
      toCrm("dueDate", "duedate"),
      { ...toCrm("customerNo", "_customerid_value"), lookup: { mapping: "CUSTOMER", entitySet: "accounts", navigation: "customerid_account" } },
    ],
    crmDefaults: {},
    ...resolutionDefaults,
  },
  {
    // An item's price in a customer price group: a price list item of the group's price list.
    name: "SALESPRC-PRODPRICE",
    erpTable: "salesPrices",
    crmEntitySet: "productpricelevels",
    crmKey: "productpricelevelid",
    crmNameField: "productnumber",
    direction: "toCrm",
    erpFilter: [],
    onlyCoupledRecords: false,
    minutesBetweenRuns: 30,
    dependencyOrder: 10,
    fields: [
      // A price list item cannot move to another price list (pricelevelid is not valid for update).
      {
        ...toCrm("customerPriceGroup", "_pricelevelid_value"),
        createOnly: true,
        lookup: { mapping: "CUSTPRCGRP-PRICE", entitySet: "pricelevels", navigation: "pricelevelid" },
      },
      { ...toCrm("itemNo", "_productid_value"), lookup: { mapping: "ITEM-PRODUCT", entitySet: "products", navigation: "productid" } },
      toCrm("unitPrice", "amount"),
    ],
    // Currency Amount pricing, no quantity selling control: the ERP's price is the price.
    crmDefaults: { pricingmethodcode: 1, quantitysellingcode: 1 },
    ...resolutionDefaults,
  },
  {
    // A posted invoice's item lines, after their invoice.
    name: "POSTEDSALESLINE-INV",
    erpTable: "postedSalesInvoiceLines",
    crmEntitySet: "invoicedetails",
    crmKey: "invoicedetailid",
    crmNameField: "productdescription",
    direction: "toCrm",
    erpFilter: [],
    onlyCoupledRecords: false,
    minutesBetweenRuns: 30,
    dependencyOrder: 11,
    fields: [
      {
        ...toCrm("documentNo", "_invoiceid_value"),
        createOnly: true,
        lookup: { mapping: "POSTEDSALESINV-INV", entitySet: "invoices", navigation: "invoiceid" },
      },
      { ...toCrm("itemNo", "_productid_value"), lookup: { mapping: "ITEM-PRODUCT", entitySet: "products", navigation: "productid" } },
      toCrm("description", "productdescription"),
      toCrm("quantity", "quantity"),
      toCrm("unitPrice", "priceperunit"),
      toCrm("lineDiscountAmount", "manualdiscountamount"),
      toCrm("lineNo", "lineitemnumber"),
    ],
    // The ERP's price is the invoiced price, not the price list's.
    crmDefaults: { ispriceoverridden: true },
    ...resolutionDefaults,
  },
];

export const statisticsJobId = "CUSTOMER STATISTICS";

/** The job-queue entry description the ERP shows. */
export const jobDescription = (mapping: string) => `${mapping} - Dynamics 365 for Sales synchronization job.`;

/** The timer function that runs a mapping's job entry: `sync-customer`, `sync-item-product`, ... */
export const timerNameOf = (jobId: string) => `sync-${jobId.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
