import { DataverseError } from "./entity-store";
import { type AttributeMetadata, type TableMetadata, attributeOf, edmTypeOf, isLookup, navigationOf, tableOfSet } from "./metadata";
import type { Row } from "./odata-query";

/**
 * A create or update body checked as Dataverse checks it, turned into the columns to store. Texts and codes
 * are those Dataverse answers with (https://learn.microsoft.com/troubleshoot/power-platform/dataverse/
 * dataverse-web-api-and-sdk/web-api-client-errors and .../webapi/execute-batch-operations-using-web-api).
 */
export type WriteKind = "create" | "update";

export interface ResolvedBinding {
  /** The lookup column (`parentcustomerid`), stored as `_parentcustomerid_value`. */
  attribute: string;
  target: string;
  id: string | null;
}

export interface CheckedWrite {
  columns: Row;
  bindings: ResolvedBinding[];
}

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isoDate = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/** The wrapper Dataverse puts around payload errors found by the OData reader. */
export function payloadError(table: TableMetadata, inner: string): DataverseError {
  return new DataverseError(
    400,
    "0x80048d19",
    `Error identified in Payload provided by the user for Entity :'${table.entitySetName}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : ${inner}`,
  );
}

export function checkWrite(
  table: TableMetadata,
  body: Row,
  kind: WriteKind,
  resolveReference: (set: string, id: string) => boolean,
  serviceRoot: string,
): CheckedWrite {
  const columns: Row = {};
  const bindings: ResolvedBinding[] = [];
  for (const [name, value] of Object.entries(body)) {
    if (name === "@odata.type") {
      if (value !== `Microsoft.Dynamics.CRM.${table.logicalName}` && value !== `#Microsoft.Dynamics.CRM.${table.logicalName}`) {
        throw payloadError(
          table,
          `Microsoft.OData.ODataException: A resource with type '${String(value).replace(/^#/, "")}' was found, but it is not assignable to the expected type 'Microsoft.Dynamics.CRM.${table.logicalName}'.`,
        );
      }
      continue;
    }
    if (name.startsWith("@odata.")) continue;
    if (name.endsWith("@odata.bind")) {
      bindings.push(checkBinding(table, name.slice(0, -"@odata.bind".length), value, resolveReference, serviceRoot));
      continue;
    }
    if (name.includes("@")) continue; // instance annotations (e.g. formatted values echoed back) are ignored
    const attribute = attributeOf(table, name);
    if (!attribute || attribute.type === "Virtual" || isLookup(attribute)) {
      throw payloadError(
        table,
        `Microsoft.Crm.CrmException: Invalid property '${name}' was found in entity 'Microsoft.Dynamics.CRM.${table.logicalName}'. ---> Microsoft.OData.ODataException: Does not support untyped value in non-open type.`,
      );
    }
    if (attribute.logicalName === table.primaryIdAttribute) {
      if (value !== null && (typeof value !== "string" || !guid.test(value))) throw conversionError(table, attribute);
      if (kind === "create") columns[name] = value;
      continue;
    }
    if (kind === "create" ? !attribute.isValidForCreate : !attribute.isValidForUpdate) {
      throw new DataverseError(
        400,
        "0x80040203",
        `The '${attribute.logicalName}' attribute of the '${table.logicalName}' entity is not valid for ${kind}. It cannot be set by a ${kind === "create" ? "Create" : "Update"} request.`,
      );
    }
    columns[name] = checkValue(table, attribute, value);
  }
  return { columns, bindings };
}

/** SystemRequired columns (and the table's primary name where the reference says so) must have a value on create. */
export function checkRequired(table: TableMetadata, row: Row): void {
  for (const attribute of table.attributes) {
    if (attribute.requiredLevel !== "SystemRequired" || !attribute.isValidForCreate || attribute.logicalName === table.primaryIdAttribute) continue;
    // State and status always get the table's initial values when not given.
    if (attribute.type === "State" || attribute.type === "Status") continue;
    const property = isLookup(attribute) ? `_${attribute.logicalName}_value` : attribute.logicalName;
    if (row[property] === undefined || row[property] === null || row[property] === "") {
      throw new DataverseError(
        400,
        "0x80040200",
        `Attribute '${attribute.logicalName}' of entity '${table.logicalName}' is required and cannot be empty (it is SystemRequired).`,
      );
    }
  }
}

function checkBinding(
  table: TableMetadata,
  name: string,
  value: unknown,
  resolveReference: (set: string, id: string) => boolean,
  serviceRoot: string,
): ResolvedBinding {
  const navigation = navigationOf(table, name);
  if (!navigation) {
    throw payloadError(
      table,
      `Microsoft.OData.ODataException: An undeclared property '${name}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values.`,
    );
  }
  const attribute = attributeOf(table, navigation.attribute);
  if (value === null) return { attribute: navigation.attribute, target: navigation.target, id: null };
  // An absolute reference must name this organization's service root; relative ones are resolved against it.
  const text = String(value);
  const root = `${serviceRoot}/api/data/v9.2/`;
  const relative = text.toLowerCase().startsWith(root.toLowerCase()) ? `/${text.slice(root.length)}` : text;
  const reference = /^\/?([A-Za-z_]+)\(([0-9a-fA-F-]{36})\)$/.exec(relative);
  if (typeof value !== "string" || !reference) {
    throw payloadError(table, `Microsoft.OData.ODataException: The value '${String(value)}' of '${name}@odata.bind' is not a valid entity reference URL.`);
  }
  const [, set, id] = reference;
  const targetTable = tableOfSet(set!);
  if (!targetTable) throw new DataverseError(404, "0x8006088a", `Resource not found for the segment '${set}'.`);
  if (targetTable.logicalName !== navigation.target) {
    throw payloadError(
      table,
      `Microsoft.OData.ODataException: The navigation property '${name}' expects a reference to 'Microsoft.Dynamics.CRM.${navigation.target}', but '${set}' holds 'Microsoft.Dynamics.CRM.${targetTable.logicalName}'.`,
    );
  }
  if (!resolveReference(set!, id!)) throw new DataverseError(404, "0x80040217", `${targetTable.logicalName} With Id = ${id!.toLowerCase()} Does Not Exist`);
  if (attribute && !attribute.isValidForCreate && !attribute.isValidForUpdate) {
    throw new DataverseError(400, "0x80040203", `The '${attribute.logicalName}' attribute of the '${table.logicalName}' entity cannot be set.`);
  }
  return { attribute: navigation.attribute, target: navigation.target, id: id!.toLowerCase() };
}

function checkValue(table: TableMetadata, attribute: AttributeMetadata, value: unknown): unknown {
  if (value === null) return null;
  switch (attribute.type) {
    case "String":
    case "Memo":
    case "EntityName": {
      if (typeof value !== "string") throw incompatible(table, attribute, value);
      if (attribute.maxLength !== undefined && value.length > attribute.maxLength) {
        throw new DataverseError(
          400,
          "0x80044331",
          `A validation error occurred.  The length of the '${attribute.logicalName}' attribute of the '${table.logicalName}' entity exceeded the maximum allowed length of '${attribute.maxLength}'.`,
        );
      }
      return value;
    }
    case "Integer":
    case "BigInt":
    case "Picklist":
    case "State":
    case "Status": {
      if (typeof value !== "number" || !Number.isInteger(value)) throw conversionError(table, attribute);
      if (attribute.options && !attribute.options.some((option) => option.value === value)) {
        throw new DataverseError(
          400,
          "0x8004431a",
          `A validation error occurred. The value ${value} of '${attribute.logicalName}' on record of type '${table.logicalName}' is outside the valid range.`,
        );
      }
      return checkRange(table, attribute, value);
    }
    case "Decimal":
    case "Double":
    case "Money":
      if (typeof value !== "number" || !Number.isFinite(value)) throw conversionError(table, attribute);
      return checkRange(table, attribute, value);
    case "Boolean":
      if (typeof value !== "boolean") throw conversionError(table, attribute);
      return value;
    case "DateTime": {
      if (typeof value !== "string" || !isoDate.test(value)) throw conversionError(table, attribute);
      // No offset means UTC (never the server's local time); the day must exist; Dataverse starts at 1753.
      const withZone = value.length === 10 ? `${value}T00:00:00Z` : /(Z|[+-]\d{2}:\d{2})$/.test(value) ? value : `${value}Z`;
      const time = Date.parse(withZone);
      const [year, month, day] = value.slice(0, 10).split("-").map(Number) as [number, number, number];
      const calendar = new Date(Date.UTC(year, month - 1, day));
      if (Number.isNaN(time) || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) throw conversionError(table, attribute);
      if (year < 1753) {
        throw new DataverseError(
          400,
          "0x80044330",
          `A validation error occurred. The value of '${attribute.logicalName}' on record of type '${table.logicalName}' is outside the valid range. Dates start at 1/1/1753.`,
        );
      }
      return new Date(time).toISOString().replace(/\.000Z$/, "Z");
    }
    case "Uniqueidentifier":
      if (typeof value !== "string" || !guid.test(value)) throw conversionError(table, attribute);
      return value.toLowerCase();
    default:
      return value;
  }
}

function checkRange(table: TableMetadata, attribute: AttributeMetadata, value: number): number {
  if ((attribute.minValue !== undefined && value < attribute.minValue) || (attribute.maxValue !== undefined && value > attribute.maxValue)) {
    throw new DataverseError(
      400,
      "0x80044330",
      `A validation error occurred. The value of '${attribute.logicalName}' on record of type '${table.logicalName}' is outside the valid range. Accepted Values: ${attribute.minValue ?? "-"} to ${attribute.maxValue ?? "-"}.`,
    );
  }
  return value;
}

function conversionError(table: TableMetadata, attribute: AttributeMetadata): DataverseError {
  return payloadError(
    table,
    `Microsoft.OData.ODataException: Cannot convert a primitive value to the expected type '${edmTypeOf(attribute)}'. See the inner exception for more details.`,
  );
}

function incompatible(table: TableMetadata, attribute: AttributeMetadata, value: unknown): DataverseError {
  const found = typeof value === "number" ? (Number.isInteger(value) ? "Edm.Int32" : "Edm.Double") : typeof value === "boolean" ? "Edm.Boolean" : "Edm.Untyped";
  return payloadError(
    table,
    `Microsoft.OData.ODataException: An incompatible primitive type '${found}[Nullable=False]' was found for an item that was expected to be of type '${edmTypeOf(attribute)}[Nullable=True]'.`,
  );
}
