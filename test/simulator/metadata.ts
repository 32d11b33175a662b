import tableJson from "./tables.json";

/**
 * The organization's metadata, from Microsoft's published Dataverse table reference
 * (https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/): each column's
 * logical name, type, length, requirement and whether it is valid for create, update and read, and each
 * lookup's navigation properties. `tables.json` holds the tables the connector, the default mappings, the
 * demo and the integration solution use; nothing else exists in this organization.
 */
export type AttributeType =
  | "String"
  | "Memo"
  | "Integer"
  | "BigInt"
  | "Decimal"
  | "Double"
  | "Money"
  | "Boolean"
  | "DateTime"
  | "Picklist"
  | "State"
  | "Status"
  | "Lookup"
  | "Owner"
  | "Customer"
  | "Uniqueidentifier"
  | "EntityName"
  | "Virtual";

export type RequiredLevel = "None" | "Recommended" | "ApplicationRequired" | "SystemRequired";

export interface AttributeMetadata {
  logicalName: string;
  type: AttributeType;
  maxLength?: number;
  minValue?: number;
  maxValue?: number;
  precision?: number;
  requiredLevel: RequiredLevel;
  isValidForCreate: boolean;
  isValidForUpdate: boolean;
  isValidForRead: boolean;
  targets?: string[];
  options?: { value: number; label: string; state?: number }[];
}

export interface NavigationProperty {
  /** The single-valued navigation property (`parentcustomerid_account`), used in `@odata.bind` and `$expand`. */
  name: string;
  /** The lookup column it sets (`parentcustomerid`); read back as `_parentcustomerid_value`. */
  attribute: string;
  target: string;
}

export interface TableMetadata {
  logicalName: string;
  entitySetName: string;
  primaryIdAttribute: string;
  primaryNameAttribute: string;
  ownershipType: "UserOwned" | "OrganizationOwned" | "BusinessOwned" | "None";
  /** Object type code, as privilege errors name it. */
  objectTypeCode: number;
  /** Change tracking is enabled (delta links report changed and deleted rows). */
  changeTracking?: boolean;
  /** Whether CreateMultiple / UpdateMultiple / UpsertMultiple are available (their SDK message filters exist). */
  bulkMessages: boolean;
  /** Messages the table supports besides the CRUD ones; the organization table has only Retrieve(Multiple) and Update. */
  messages?: ("Create" | "Retrieve" | "RetrieveMultiple" | "Update" | "Delete")[];
  alternateKeys: { name: string; keyAttributes: string[] }[];
  /** Values the server gives SystemRequired columns a client need not send (e.g. product.productstructure). */
  defaults?: Record<string, unknown>;
  docUrl: string;
  attributes: AttributeMetadata[];
  navigationProperties: NavigationProperty[];
}

const tables = tableJson as unknown as TableMetadata[];
const bySet = new Map(tables.map((table) => [table.entitySetName, table]));
const byLogicalName = new Map(tables.map((table) => [table.logicalName, table]));

export const allTables: readonly TableMetadata[] = tables;

export function tableOfSet(set: string): TableMetadata | undefined {
  return bySet.get(set);
}

export function tableOfLogicalName(name: string): TableMetadata | undefined {
  return byLogicalName.get(name);
}

export function attributeOf(table: TableMetadata, name: string): AttributeMetadata | undefined {
  return table.attributes.find((attribute) => attribute.logicalName === name);
}

export function navigationOf(table: TableMetadata, name: string): NavigationProperty | undefined {
  return table.navigationProperties.find((navigation) => navigation.name === name);
}

export const isLookup = (attribute: AttributeMetadata) => attribute.type === "Lookup" || attribute.type === "Owner" || attribute.type === "Customer";

/**
 * The properties a row shows in the Web API: plain columns by logical name, lookups as `_name_value`.
 * Virtual columns and columns not valid for read do not appear.
 */
export function readableProperty(table: TableMetadata, property: string): AttributeMetadata | undefined {
  const lookup = /^_(.+)_value$/.exec(property);
  if (lookup) {
    const attribute = attributeOf(table, lookup[1]!);
    return attribute && isLookup(attribute) ? attribute : undefined;
  }
  const attribute = attributeOf(table, property);
  if (!attribute || isLookup(attribute) || attribute.type === "Virtual" || !attribute.isValidForRead) return undefined;
  return attribute;
}

export const propertyNameOf = (attribute: AttributeMetadata) => (isLookup(attribute) ? `_${attribute.logicalName}_value` : attribute.logicalName);

const edmTypes: Record<AttributeType, string> = {
  String: "Edm.String",
  Memo: "Edm.String",
  Integer: "Edm.Int32",
  BigInt: "Edm.Int64",
  Decimal: "Edm.Decimal",
  Double: "Edm.Double",
  Money: "Edm.Decimal",
  Boolean: "Edm.Boolean",
  DateTime: "Edm.DateTimeOffset",
  Picklist: "Edm.Int32",
  State: "Edm.Int32",
  Status: "Edm.Int32",
  Lookup: "Edm.Guid",
  Owner: "Edm.Guid",
  Customer: "Edm.Guid",
  Uniqueidentifier: "Edm.Guid",
  EntityName: "Edm.String",
  Virtual: "Edm.String",
};

export const edmTypeOf = (attribute: AttributeMetadata) => edmTypes[attribute.type];

/** `GET $metadata`: the CSDL subset clients read (entity types, keys, properties, navigation, entity sets). */
export function csdl(): string {
  const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  const types = tables.map((table) => {
    const properties = table.attributes
      .filter((attribute) => attribute.type !== "Virtual" && attribute.isValidForRead)
      .map((attribute) => `<Property Name="${escape(propertyNameOf(attribute))}" Type="${edmTypeOf(attribute)}" />`);
    const navigation = table.navigationProperties.map(
      (nav) =>
        `<NavigationProperty Name="${escape(nav.name)}" Type="mscrm.${nav.target}" Nullable="false" Partner="${escape(`${nav.name}_${table.logicalName}`)}"><ReferentialConstraint Property="_${nav.attribute}_value" ReferencedProperty="${tableOfLogicalName(nav.target)?.primaryIdAttribute ?? `${nav.target}id`}" /></NavigationProperty>`,
    );
    return `<EntityType Name="${table.logicalName}" BaseType="mscrm.crmbaseentity"><Key><PropertyRef Name="${table.primaryIdAttribute}" /></Key>${properties.join("")}${navigation.join("")}</EntityType>`;
  });
  const sets = tables.map((table) => `<EntitySet Name="${table.entitySetName}" EntityType="Microsoft.Dynamics.CRM.${table.logicalName}" />`);
  return (
    `<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">` +
    `<edmx:DataServices><Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">` +
    `<EntityType Name="crmbaseentity" Abstract="true" />${types.join("")}` +
    `<EntityContainer Name="System">${sets.join("")}</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>`
  );
}

const attributeTypeNames: Record<AttributeType, string> = {
  String: "StringAttributeMetadata",
  Memo: "MemoAttributeMetadata",
  Integer: "IntegerAttributeMetadata",
  BigInt: "BigIntAttributeMetadata",
  Decimal: "DecimalAttributeMetadata",
  Double: "DoubleAttributeMetadata",
  Money: "MoneyAttributeMetadata",
  Boolean: "BooleanAttributeMetadata",
  DateTime: "DateTimeAttributeMetadata",
  Picklist: "PicklistAttributeMetadata",
  State: "StateAttributeMetadata",
  Status: "StatusAttributeMetadata",
  Lookup: "LookupAttributeMetadata",
  Owner: "LookupAttributeMetadata",
  Customer: "LookupAttributeMetadata",
  Uniqueidentifier: "AttributeMetadata",
  EntityName: "EntityNameAttributeMetadata",
  Virtual: "AttributeMetadata",
};

/** `EntityDefinitions(LogicalName='account')?$expand=Attributes`, in the shape of the metadata Web API. */
export function entityDefinition(table: TableMetadata, withAttributes: boolean): Record<string, unknown> {
  return {
    LogicalName: table.logicalName,
    EntitySetName: table.entitySetName,
    PrimaryIdAttribute: table.primaryIdAttribute,
    PrimaryNameAttribute: table.primaryNameAttribute,
    ObjectTypeCode: table.objectTypeCode,
    OwnershipType: table.ownershipType,
    Keys: table.alternateKeys.map((key) => ({ LogicalName: key.name, KeyAttributes: key.keyAttributes })),
    MetadataId: metadataId(table.logicalName),
    ...(withAttributes && {
      Attributes: table.attributes.map((attribute) => ({
        "@odata.type": `#Microsoft.Dynamics.CRM.${attributeTypeNames[attribute.type]}`,
        LogicalName: attribute.logicalName,
        AttributeType: attribute.type,
        RequiredLevel: { Value: attribute.requiredLevel, CanBeChanged: attribute.requiredLevel !== "SystemRequired" },
        IsValidForCreate: attribute.isValidForCreate,
        IsValidForUpdate: attribute.isValidForUpdate,
        IsValidForRead: attribute.isValidForRead,
        IsPrimaryId: attribute.logicalName === table.primaryIdAttribute,
        IsPrimaryName: attribute.logicalName === table.primaryNameAttribute,
        ...(attribute.maxLength !== undefined && { MaxLength: attribute.maxLength }),
        ...(attribute.minValue !== undefined && { MinValue: attribute.minValue }),
        ...(attribute.maxValue !== undefined && { MaxValue: attribute.maxValue }),
        ...(attribute.precision !== undefined && { Precision: attribute.precision }),
        ...(attribute.targets && { Targets: attribute.targets }),
        MetadataId: metadataId(`${table.logicalName}.${attribute.logicalName}`),
      })),
    }),
  };
}

/** A stable GUID-shaped id per name, so metadata ids do not change between runs. */
function metadataId(name: string): string {
  let hash = 2166136261;
  const bytes: number[] = [];
  for (let round = 0; round < 16; round++) {
    for (const char of `${round}:${name}`) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0;
    bytes.push(hash & 0xff);
  }
  const hex = bytes.map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
