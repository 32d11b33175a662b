import { DataverseError, type EntityStore } from "./entity-store";
import { type AttributeMetadata, type TableMetadata, isLookup, navigationOf, propertyNameOf, readableProperty, tableOfLogicalName } from "./metadata";
import type { Row } from "./odata-query";

/**
 * What a row looks like in an answer: `$select`ed properties (all readable ones without it), `$expand`ed
 * single-valued navigation properties, and the annotations asked for with
 * `Prefer: odata.include-annotations` (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/select-columns
 * and .../query/join-tables).
 */
export interface ExpandItem {
  navigation: string;
  select: string[] | undefined;
}

export interface Shape {
  select: string[] | undefined;
  expand: ExpandItem[];
  annotations: AnnotationFilter;
}

export type AnnotationFilter = (name: string) => boolean;
export const noAnnotations: AnnotationFilter = () => false;

export function unknownProperty(table: TableMetadata, name: string): DataverseError {
  return new DataverseError(400, "0x0", `Could not find a property named '${name}' on type 'Microsoft.Dynamics.CRM.${table.logicalName}'.`);
}

/** `$select=a,b`: every name must be a readable property of the table. */
export function parseSelect(table: TableMetadata, text: string | null): string[] | undefined {
  if (text === null) return undefined;
  const fields = text.split(",").map((field) => field.trim());
  if (fields.some((field) => field === "")) throw new DataverseError(400, "0x0", `Syntax error in $select: '${text}' has an empty item.`);
  const duplicate = fields.find((field, index) => fields.indexOf(field) !== index);
  if (duplicate) throw new DataverseError(400, "0x0", `Found multiple select terms for '${duplicate}'. Each property may be selected once.`);
  for (const field of fields) if (!readableProperty(table, field)) throw unknownProperty(table, field);
  return fields;
}

/** `$expand=primarycontactid($select=fullname),ownerid`: single-valued navigation properties only. */
export function parseExpand(table: TableMetadata, text: string | null): ExpandItem[] {
  if (text === null || text.trim() === "") return [];
  const items: ExpandItem[] = [];
  for (const part of splitTopLevel(text)) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:\((.*)\))?$/.exec(part.trim());
    if (!match) throw new DataverseError(400, "0x0", `Syntax error in $expand: '${part.trim()}'.`);
    const [, name, options] = match;
    const navigation = navigationOf(table, name!);
    if (!navigation) {
      if (name === "systemuserroles_association" || /_association$|^(contact_customer_accounts|account_parent_account|product_price_levels)$/.test(name!)) {
        throw new DataverseError(400, "0x0", `The simulator expands single-valued navigation properties only; '${name}' is collection-valued.`);
      }
      throw unknownProperty(table, name!);
    }
    const target = tableOfLogicalName(navigation.target)!;
    let select: string[] | undefined;
    for (const option of splitOptions(options ?? "")) {
      const [key, value = ""] = option.split("=", 2) as [string, string?];
      if (key === "$select") select = parseSelect(target, value);
      else throw new DataverseError(400, "0x0", `The query option '${key}' inside $expand is not supported by the simulator.`);
    }
    items.push({ navigation: name!, select });
  }
  return items;
}

/** `Prefer: odata.include-annotations="*"` or a list of names, each maybe ending in `.*`. */
export function annotationFilter(prefer: string | undefined): { filter: AnnotationFilter; applied?: string } {
  const value = /odata\.include-annotations="?([^",;]*(?:,[^",;]*)*)"?/.exec(prefer ?? "")?.[1];
  if (!value) return { filter: noAnnotations };
  const patterns = value.split(",").map((pattern) => pattern.trim());
  return {
    filter: (name) => patterns.some((pattern) => pattern === "*" || pattern === name || (pattern.endsWith(".*") && name.startsWith(pattern.slice(0, -1)))),
    applied: `odata.include-annotations="${value}"`,
  };
}

export function project(store: EntityStore, table: TableMetadata, row: Row, shape: Shape): Row {
  const out: Row = { "@odata.etag": store.etag(row) };
  const properties = shape.select ? [...new Set([...shape.select, table.primaryIdAttribute])] : allReadable(table);
  for (const property of properties) {
    const attribute = readableProperty(table, property)!;
    const value = row[property] ?? null;
    out[property] = value;
    if (value !== null) annotate(store, table, attribute, property, value, shape.annotations, out);
  }
  for (const item of shape.expand) {
    const navigation = navigationOf(table, item.navigation)!;
    const target = tableOfLogicalName(navigation.target)!;
    const id = row[`_${navigation.attribute}_value`];
    const related = typeof id === "string" ? store.get(target.entitySetName, id) : undefined;
    out[item.navigation] = related ? project(store, target, related, { select: item.select, expand: [], annotations: shape.annotations }) : null;
  }
  return out;
}

function allReadable(table: TableMetadata): string[] {
  return table.attributes.filter((attribute) => readableProperty(table, propertyNameOf(attribute))).map(propertyNameOf);
}

function annotate(
  store: EntityStore,
  table: TableMetadata,
  attribute: AttributeMetadata,
  property: string,
  value: unknown,
  wanted: AnnotationFilter,
  out: Row,
): void {
  const formatted = "OData.Community.Display.V1.FormattedValue";
  if (isLookup(attribute)) {
    const navigation = table.navigationProperties.find(
      (candidate) => candidate.attribute === attribute.logicalName && store.get(tableOfLogicalName(candidate.target)!.entitySetName, String(value)),
    );
    const target = navigation && tableOfLogicalName(navigation.target)!;
    const related = target && store.get(target.entitySetName, String(value));
    if (related && wanted(formatted)) out[`${property}@${formatted}`] = String(related[target.primaryNameAttribute] ?? "");
    if (navigation && wanted("Microsoft.Dynamics.CRM.associatednavigationproperty"))
      out[`${property}@Microsoft.Dynamics.CRM.associatednavigationproperty`] = navigation.name;
    if (target && wanted("Microsoft.Dynamics.CRM.lookuplogicalname")) out[`${property}@Microsoft.Dynamics.CRM.lookuplogicalname`] = target.logicalName;
    return;
  }
  if (!wanted(formatted)) return;
  const text = formattedValue(attribute, value);
  if (text !== undefined) out[`${property}@${formatted}`] = text;
}

/** Formatted values in the organization's base language and formats (English, US dollars). */
export function formattedValue(attribute: AttributeMetadata, value: unknown): string | undefined {
  switch (attribute.type) {
    case "Picklist":
    case "State":
    case "Status":
      return attribute.options?.find((option) => option.value === value)?.label;
    case "Boolean":
      return value ? "Yes" : "No";
    case "Money":
      return new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(Number(value));
    case "Integer":
    case "BigInt":
    case "Decimal":
    case "Double":
      return new Intl.NumberFormat("en-US").format(Number(value));
    case "DateTime":
      return new Intl.DateTimeFormat("en-US", { dateStyle: "short", timeStyle: "short", timeZone: "UTC" }).format(new Date(String(value)));
    default:
      return undefined;
  }
}

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "(") depth++;
    if (char === ")") depth--;
    if (char === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += char;
  }
  if (current.trim()) parts.push(current);
  return parts;
}

function splitOptions(text: string): string[] {
  return text
    .split(";")
    .map((option) => option.trim())
    .filter(Boolean);
}
