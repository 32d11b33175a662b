/** The ERP tables the connector stores and synchronizes. */
export const erpTables = [
  "customers",
  "contacts",
  "items",
  "resources",
  "currencies",
  "unitsOfMeasure",
  "salespeople",
  "customerPriceGroups",
  "postedSalesInvoices",
  "salesOrders",
  "customerStatistics",
  "salesPrices",
  "postedSalesInvoiceLines",
  "paymentTerms",
  "shipmentMethods",
  "shippingAgents",
] as const;
/** ERP tables whose codes stand for a CRM option value (BC's option mappings). */
export type OptionTable = "paymentTerms" | "shipmentMethods" | "shippingAgents";
export type ErpTable = (typeof erpTables)[number];
