import type { EntraSimulator } from "./entra";
import { DataverseError, type EntityStore } from "./entity-store";
import type { Fixture } from "./fixture";
import { type TableMetadata, allTables, attributeOf, csdl, entityDefinition, readableProperty, tableOfLogicalName, tableOfSet } from "./metadata";
import { type InnerRequest, type InnerResponse, boundaryOf, formatResponses, parseInnerRequest, splitParts } from "./multipart";
import { ODataQueryError, type Row, comparatorOf, parseFilter, parseOrderKeys } from "./odata-query";
import { decodeSkipToken, encodeSkipToken } from "./paging";
import { type Shape, annotationFilter, noAnnotations, parseExpand, parseSelect, project, unknownProperty } from "./projection";
import { type ResolvedBinding, checkRequired, checkWrite, payloadError } from "./row-validation";
import { type Access, SecurityModel } from "./security";
import { checkOrderUpdate, fulfillSalesOrder, recomputeOrderTotals } from "./sales-orders";

export const apiPath = "/api/data/v9.2";
const maxPageSize = 5000;
const maxBatchOperations = 1000;
export const businessUnitId = "b0b0b0b0-0000-4000-8000-000000000001";

export interface Caller {
  systemuserid: string;
}

export interface WebApiOptions {
  /**
   * Dataverse drops values written to columns that are not valid for create or update, without an error.
   * `refuse` (the default here) answers 400 instead, so a connector that relies on such a write fails a
   * test rather than losing the value silently; `ignore` behaves as the service does.
   */
  readOnlyColumns: "refuse" | "ignore";
}

/** The answer, and how many rows it touched (for the execution-time limit). */
export type WebApiResponse = InnerResponse & { rows?: number };

/** Who a request acts as: the signed-in user, or the user it impersonates (with both users' privileges). */
interface Principal {
  user: Row;
  roles: string[];
  caller?: { user: Row; roles: string[] };
}

/** Query options Dataverse documents for entity sets; anything else is refused, never silently ignored. */
const supportedOptions = new Set(["$select", "$filter", "$orderby", "$top", "$expand", "$count", "$skiptoken"]);
const unsupportedOptions: Record<string, string> = {
  $skip: "The query parameter $skip is not supported. Use the @odata.nextLink of the previous page (paging cookie) instead.",
  $search: "The query parameter $search is not supported. Use the Dataverse search API instead.",
  $apply: "The simulator does not support $apply (aggregation).",
  fetchXml: "The simulator does not support fetchXml queries; use OData query options.",
  savedQuery: "The simulator does not support saved queries.",
  userQuery: "The simulator does not support user queries.",
  $format: "The query parameter $format is not supported.",
  $levels: "The query parameter $levels is not supported.",
};

/**
 * The Dataverse Web API v9.2 over an EntityStore, checked against the organization's metadata and security
 * roles: $metadata and EntityDefinitions, WhoAmI, RetrieveVersion, entity sets with the documented query
 * options and paging cookie, create/update/upsert/delete with ETags and alternate keys, the bulk messages
 * and $batch with change sets.
 */
export class WebApi {
  readonly security = new SecurityModel();

  constructor(
    private readonly store: EntityStore,
    private readonly fixture: Fixture,
    private readonly baseUrl: () => string,
    private readonly roles: Map<string, string[]>,
    readonly entra: EntraSimulator,
    readonly options: WebApiOptions = { readOnlyColumns: "refuse" },
  ) {}

  handle(request: InnerRequest, caller: Caller): WebApiResponse {
    try {
      return this.route(request, caller);
    } catch (error) {
      return this.answerFor(error);
    }
  }

  answerFor(error: unknown): InnerResponse {
    if (error instanceof DataverseError) return this.error(error.status, error.code, error.message, error.headers);
    if (error instanceof ODataQueryError) return this.error(400, "0x0", error.message);
    if (error instanceof SyntaxError)
      return this.error(400, "0x80048d19", `Error identified in Payload provided by the user: the body is not valid JSON (${error.message}).`);
    if (error instanceof URIError || (error instanceof TypeError && /Invalid URL/.test(error.message)))
      return this.error(400, "0x80060888", "Bad Request - Error in query syntax: the request URL is not valid.");
    throw error;
  }

  private route(request: InnerRequest, caller: Caller): WebApiResponse {
    const url = new URL(request.url, this.baseUrl());
    const path = decodeURIComponent(url.pathname.slice(apiPath.length + 1));
    const principal = this.principal(caller, request.headers);
    const method = request.method;

    if (path === "" && method === "GET") {
      return this.json(200, {
        "@odata.context": `${this.baseUrl()}${apiPath}/$metadata`,
        value: allTables.map((table) => ({ name: table.entitySetName, kind: "EntitySet", url: table.entitySetName })),
      });
    }
    if (path === "$metadata" && method === "GET") return { status: 200, headers: { "Content-Type": "application/xml" }, body: csdl() };
    const definition = /^EntityDefinitions(?:\(LogicalName='([a-z_0-9]+)'\))?$/.exec(path);
    if (definition && method === "GET") return this.entityDefinitions(definition[1], url);
    if (/^WhoAmI(\(\))?$/.test(path) && method === "GET") {
      return this.json(200, {
        "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`,
        BusinessUnitId: businessUnitId,
        UserId: principal.user.systemuserid,
        OrganizationId: this.fixture.organization.organizationid,
      });
    }
    if (/^RetrieveVersion(\(\))?$/.test(path) && method === "GET") {
      return this.json(200, {
        "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse`,
        Version: this.fixture.organization.version,
      });
    }
    if (path === "FulfillSalesOrder" && method === "POST") {
      const orders = this.table("salesorders");
      this.require(principal, "Write", orders);
      fulfillSalesOrder(this.store, objectBody(request.body), String(principal.user.systemuserid));
      return { status: 204, headers: {} };
    }
    const action = /^([a-z_]+)\/(Microsoft\.Dynamics\.CRM\.[A-Za-z]+)$/.exec(path);
    if (action && method === "POST") return this.bulk(this.table(action[1]!), action[2]!, objectBody(request.body), principal);

    const count = /^([a-z_]+)\/\$count$/.exec(path);
    if (count && method === "GET") {
      const table = this.table(count[1]!);
      this.require(principal, "Read", table);
      return { status: 200, headers: { "Content-Type": "text/plain" }, body: String(Math.min(this.filtered(table, url.searchParams).length, maxPageSize)) };
    }
    const navigation = /^([a-z_]+)\(([^)]+)\)\/([a-z_]+)$/.exec(path);
    if (navigation && method === "GET") return this.navigate(this.table(navigation[1]!), navigation[2]!, navigation[3]!, principal, url);

    const single = /^([a-z_]+)\((.+)\)$/.exec(path);
    if (single) return this.single(request, this.table(single[1]!), single[2]!, principal, url);

    const collection = /^([a-z_]+)$/.exec(path);
    if (collection) {
      const table = this.table(collection[1]!);
      if (method === "GET") {
        this.require(principal, "Read", table);
        return this.query(table, url, request.headers);
      }
      if (method === "POST") {
        this.supports(table, "Create");
        const row = this.createRow(table, objectBody(request.body), principal);
        return this.written(table, row, 201, request.headers, url);
      }
      return this.error(405, "0x80060888", `The HTTP method '${method}' is not allowed for the resource '${table.entitySetName}'.`);
    }
    return this.error(404, "0x8006088a", `Resource not found for the segment '${path.split("/")[0]}'.`);
  }

  // ---------- principals and privileges ----------

  /**
   * The user a request acts as. A token whose principal has no systemuser in this organization gets 403
   * 0x80072560; disabled and unlicensed users are refused on every call. Impersonation (CallerObjectId or
   * MSCRMCallerID) needs prvActOnBehalfOfAnotherUser, and then both users' privileges apply.
   */
  private principal(caller: Caller, headers: Record<string, string>): Principal {
    const user = this.store.get("systemusers", caller.systemuserid);
    if (!user) throw new DataverseError(403, "0x80072560", "The user is not a member of the organization.");
    this.checkAccess(user);
    const roles = this.rolesOf(user);
    const objectId = headers["callerobjectid"];
    const callerId = headers["mscrmcallerid"];
    if (!objectId && !callerId) return { user, roles };
    if (objectId && callerId) throw new DataverseError(400, "0x80040203", "Send either CallerObjectId or MSCRMCallerID, not both.");
    const impersonated = objectId ?? callerId!;
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(impersonated))
      throw new DataverseError(400, "0x80040203", `'${impersonated}' is not a valid GUID for impersonation.`);
    this.security.requireMisc(user, roles, "prvActOnBehalfOfAnotherUser");
    const target = objectId
      ? this.store.rows("systemusers").find((row) => String(row.azureactivedirectoryobjectid ?? "").toLowerCase() === objectId.toLowerCase())
      : this.store.get("systemusers", callerId!);
    if (!target) {
      throw new DataverseError(
        404,
        "0x80040217",
        objectId
          ? `systemuser With azureactivedirectoryobjectid = ${objectId.toLowerCase()} Does Not Exist`
          : `systemuser With Id = ${callerId!.toLowerCase()} Does Not Exist`,
      );
    }
    this.checkAccess(target);
    return { user: target, roles: this.rolesOf(target), caller: { user, roles } };
  }

  private rolesOf(user: Row): string[] {
    return this.roles.get(String(user.systemuserid)) ?? [];
  }

  private checkAccess(user: Row): void {
    if (user.isdisabled) {
      throw new DataverseError(
        403,
        "0x80040225",
        `The user with SystemUserId=${user.systemuserid} in OrganizationContext=${this.fixture.organization.organizationid} is disabled. Disabled users cannot access the system. Consider enabling this user. Also, users are disabled if they don't have a license or if the user is not part of the allowed security group.`,
      );
    }
    // An unlicensed user is refused like one outside the organization; the message says why (unconfirmed wording).
    if (user.islicensed === false && !user.applicationid)
      throw new DataverseError(403, "0x80072560", "The user is not a member of the organization. The user has no license for Dynamics 365 Sales.");
  }

  private require(principal: Principal, access: Access, table: TableMetadata): void {
    this.security.require(principal.user, principal.roles, access, table);
    if (principal.caller) this.security.require(principal.caller.user, principal.caller.roles, access, table);
  }

  /** Append on the row's table and AppendTo on each table a lookup points at. */
  private requireBindings(principal: Principal, table: TableMetadata, bindings: ResolvedBinding[]): void {
    const set = bindings.filter((binding) => binding.id !== null);
    if (set.length === 0) return;
    this.require(principal, "Append", table);
    for (const binding of set) this.require(principal, "AppendTo", tableOfLogicalName(binding.target)!);
  }

  /** The organization table has only Retrieve, RetrieveMultiple and Update. */
  private supports(table: TableMetadata, message: "Create" | "Update" | "Delete"): void {
    if (table.messages && !table.messages.includes(message)) {
      throw new DataverseError(
        400,
        "0x80040800",
        `The '${message}' method does not support entities of type '${table.logicalName}'. MessageProcessorCache returned MessageProcessor.Empty.`,
      );
    }
  }

  // ---------- metadata ----------

  private entityDefinitions(logicalName: string | undefined, url: URL): InnerResponse {
    const expand = url.searchParams.get("$expand");
    if (expand !== null && expand !== "Attributes")
      throw new DataverseError(400, "0x0", `The simulator expands only Attributes of EntityDefinitions, not '${expand}'.`);
    if (url.searchParams.has("$filter"))
      throw new DataverseError(400, "0x0", "The simulator does not support $filter on EntityDefinitions; address one table by LogicalName.");
    if (!logicalName) {
      return this.json(200, {
        "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#EntityDefinitions`,
        value: allTables.map((table) => entityDefinition(table, expand === "Attributes")),
      });
    }
    const table = tableOfLogicalName(logicalName);
    if (!table) throw new DataverseError(404, "0x80040217", `Could not find an entity with the name ${logicalName}.`);
    return this.json(200, {
      "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#EntityDefinitions/$entity`,
      ...entityDefinition(table, expand === "Attributes"),
    });
  }

  private table(set: string): TableMetadata {
    const table = tableOfSet(set);
    if (!table) throw new DataverseError(404, "0x8006088a", `Resource not found for the segment '${set}'.`);
    return table;
  }

  // ---------- single rows ----------

  /** `accounts(<guid>)` or, where the metadata defines the key, `accounts(accountnumber='A-1')`. */
  private keyOf(table: TableMetadata, text: string): { id?: string; alternate?: Row } {
    if (/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text)) return { id: text.toLowerCase() };
    const values: Row = {};
    for (const part of text.split(/,(?=[a-z_0-9]+=)/)) {
      const match = /^([a-z_0-9]+)=(?:'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?))$/.exec(part.trim());
      if (!match) throw new DataverseError(400, "0x80060888", `Bad Request - Error in query syntax: the key '${text}' is not valid.`);
      values[match[1]!] = match[2] !== undefined ? match[2].replace(/''/g, "'") : Number(match[3]);
    }
    const names = Object.keys(values).sort().join(",");
    if (!table.alternateKeys.some((key) => [...key.keyAttributes].sort().join(",") === names)) {
      throw new DataverseError(
        400,
        "0x80060888",
        `Invalid key: '${Object.keys(values).join(",")}' is not an alternate key of the entity '${table.logicalName}'. Define the key in the table's metadata first.`,
      );
    }
    return { alternate: values };
  }

  private find(table: TableMetadata, key: { id?: string; alternate?: Row }): Row | undefined {
    return key.id ? this.store.get(table.entitySetName, key.id) : this.store.findByKey(table.entitySetName, key.alternate!);
  }

  private notFound(table: TableMetadata, key: { id?: string; alternate?: Row }): DataverseError {
    const name =
      key.id ??
      Object.entries(key.alternate!)
        .map(([column, value]) => `${column}:${String(value)}`)
        .join(",");
    return new DataverseError(404, "0x80040217", `${table.logicalName} With Id = ${name} Does Not Exist`);
  }

  private single(request: InnerRequest, table: TableMetadata, keyText: string, principal: Principal, url: URL): WebApiResponse {
    const key = this.keyOf(table, keyText);
    const existing = this.find(table, key);
    const ifMatch = request.headers["if-match"];
    const ifNoneMatch = request.headers["if-none-match"];
    switch (request.method) {
      case "GET": {
        this.require(principal, "Read", table);
        if (!existing) throw this.notFound(table, key);
        const annotations = annotationFilter(request.headers["prefer"]);
        const expand = url.searchParams.get("$expand");
        this.checkOptions(url, new Set(["$select", "$expand"]));
        // Conditional retrieval never answers 304 with $expand or annotations (documented).
        if (ifNoneMatch && ifNoneMatch === this.store.etag(existing) && !expand && !annotations.applied) return { status: 304, headers: { ETag: ifNoneMatch } };
        const shape: Shape = {
          select: parseSelect(table, url.searchParams.get("$select")),
          expand: parseExpand(table, expand),
          annotations: annotations.filter,
        };
        return this.json(
          200,
          { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#${table.entitySetName}/$entity`, ...project(this.store, table, existing, shape) },
          { ETag: this.store.etag(existing), ...(annotations.applied && { "Preference-Applied": annotations.applied }) },
        );
      }
      case "PATCH": {
        if (ifMatch && !existing) throw this.notFound(table, key);
        if (ifMatch && ifMatch !== "*" && existing && ifMatch !== this.store.etag(existing)) {
          throw new DataverseError(412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided.");
        }
        if (ifNoneMatch === "*" && existing) throw new DataverseError(412, "0x80040237", "A record with matching key values already exists.");
        const body = objectBody(request.body);
        if (existing) {
          this.supports(table, "Update");
          const row = this.updateRow(table, existing, body, principal);
          return this.written(table, row, 200, request.headers, url);
        }
        this.supports(table, "Create");
        const row = this.createRow(table, { ...body, ...(key.id ? { [table.primaryIdAttribute]: key.id } : key.alternate) }, principal);
        return this.written(table, row, 201, request.headers, url);
      }
      case "DELETE": {
        this.supports(table, "Delete");
        this.require(principal, "Delete", table);
        if (!existing) throw this.notFound(table, key);
        if (ifMatch && ifMatch !== "*" && ifMatch !== this.store.etag(existing)) {
          throw new DataverseError(412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided.");
        }
        this.store.delete(table.entitySetName, String(existing[table.primaryIdAttribute]));
        this.afterLineWrite(table, existing, principal);
        return { status: 204, headers: {} };
      }
      default:
        return this.error(405, "0x80060888", `The HTTP method '${request.method}' is not allowed for this resource.`);
    }
  }

  /** `systemusers(<id>)/systemuserroles_association` (the roles of a user); single-valued ones answer the related row. */
  private navigate(table: TableMetadata, keyText: string, property: string, principal: Principal, url: URL): InnerResponse {
    const key = this.keyOf(table, keyText);
    this.require(principal, "Read", table);
    const row = this.find(table, key);
    if (!row) throw this.notFound(table, key);
    if (table.logicalName === "systemuser" && property === "systemuserroles_association") {
      const roleTable = this.table("roles");
      this.require(principal, "Read", roleTable);
      const select = parseSelect(roleTable, url.searchParams.get("$select"));
      const names = this.rolesOf(row);
      const value = this.store
        .rows("roles")
        .filter((role) => names.includes(String(role.name)))
        .map((role) => project(this.store, roleTable, role, { select, expand: [], annotations: noAnnotations }));
      return this.json(200, { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#roles`, value });
    }
    const navigation = table.navigationProperties.find((candidate) => candidate.name === property);
    if (!navigation) throw unknownProperty(table, property);
    const target = tableOfLogicalName(navigation.target)!;
    this.require(principal, "Read", target);
    const related = this.store.get(target.entitySetName, String(row[`_${navigation.attribute}_value`] ?? ""));
    if (!related) return { status: 204, headers: {} };
    return this.json(200, {
      "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#${target.entitySetName}/$entity`,
      ...project(this.store, target, related, { select: parseSelect(target, url.searchParams.get("$select")), expand: [], annotations: noAnnotations }),
    });
  }

  // ---------- writes ----------

  private checked(table: TableMetadata, body: Row, kind: "create" | "update") {
    const ignoreReadOnly = this.options.readOnlyColumns === "ignore";
    const filtered = ignoreReadOnly
      ? Object.fromEntries(
          Object.entries(body).filter(([name]) => {
            const attribute = attributeOf(table, name);
            return !attribute || name === table.primaryIdAttribute || (kind === "create" ? attribute.isValidForCreate : attribute.isValidForUpdate);
          }),
        )
      : body;
    return checkWrite(table, filtered, kind, (set, id) => this.store.get(set, id) !== undefined, this.baseUrl());
  }

  createRow(table: TableMetadata, body: Row, principal: Principal): Row {
    this.require(principal, "Create", table);
    const { columns, bindings } = this.checked(table, body, "create");
    this.requireBindings(principal, table, bindings);
    const properties: Row = { ...columns };
    for (const binding of bindings) properties[`_${binding.attribute}_value`] = binding.id;
    const defaults = { ...table.defaults, ...this.serverDefaults(table, principal, properties) };
    checkRequired(table, { ...defaults, ...properties });
    const row = this.store.create(table.entitySetName, properties, String(principal.user.systemuserid), defaults);
    this.afterLineWrite(table, row, principal);
    return row;
  }

  /** An order line written or deleted: the order's totals follow (Dataverse's price calculation). */
  private afterLineWrite(table: TableMetadata, line: Row, principal: Principal): void {
    if (table.logicalName === "salesorderdetail")
      recomputeOrderTotals(this.store, line._salesorderid_value as string | undefined, String(principal.user.systemuserid));
  }

  updateRow(table: TableMetadata, existing: Row, body: Row, principal: Principal): Row {
    this.require(principal, "Write", table);
    const { columns, bindings } = this.checked(table, body, "update");
    this.requireBindings(principal, table, bindings);
    const properties: Row = { ...columns };
    for (const binding of bindings) properties[`_${binding.attribute}_value`] = binding.id;
    for (const [name, value] of Object.entries(properties)) {
      const attribute = attributeOf(table, name.replace(/^_(.+)_value$/, "$1"));
      if (value === null && attribute?.requiredLevel === "SystemRequired") {
        throw new DataverseError(400, "0x80040203", `Attribute '${attribute.logicalName}' of entity '${table.logicalName}' cannot be set to NULL.`);
      }
    }
    if (principal.caller) properties._modifiedonbehalfby_value = principal.caller.user.systemuserid;
    const checked = table.logicalName === "salesorder" ? checkOrderUpdate(existing, properties) : properties;
    const row = this.store.update(table.entitySetName, String(existing[table.primaryIdAttribute]), checked, String(principal.user.systemuserid));
    this.afterLineWrite(table, row, principal);
    return row;
  }

  /** What Dataverse fills in on create: owner, business unit, base currency, autonumbers, on-behalf-of. */
  private serverDefaults(table: TableMetadata, principal: Principal, given: Row): Row {
    const defaults: Row = {};
    const userId = String(principal.user.systemuserid);
    if (attributeOf(table, "ownerid") && table.ownershipType === "UserOwned") {
      const owner = given._ownerid_value ?? userId;
      Object.assign(defaults, { _ownerid_value: owner, _owninguser_value: owner, _owningbusinessunit_value: businessUnitId });
    }
    if (attributeOf(table, "owningbusinessunit") && !defaults._owningbusinessunit_value) defaults._owningbusinessunit_value = businessUnitId;
    if (attributeOf(table, "transactioncurrencyid") && given._transactioncurrencyid_value === undefined && table.logicalName !== "transactioncurrency") {
      defaults._transactioncurrencyid_value = this.baseCurrencyId();
    }
    if (attributeOf(table, "exchangerate") && table.logicalName !== "transactioncurrency") defaults.exchangerate = 1;
    if (table.logicalName === "systemuser") defaults._businessunitid_value = businessUnitId;
    if (table.logicalName === "salesorder")
      defaults.ordernumber = `ORD-${String(this.store.rows("salesorders").length + 1001).padStart(5, "0")}-${autonumberSuffix()}`;
    // Order lines are numbered in the order they are added (the sequence the Sales UI shows them in).
    if (table.logicalName === "salesorderdetail" && given.sequencenumber === undefined) {
      const order = String(given._salesorderid_value ?? "").toLowerCase();
      defaults.sequencenumber = this.store.rows("salesorderdetails").filter((row) => String(row._salesorderid_value ?? "").toLowerCase() === order).length + 1;
    }
    if (table.logicalName === "invoice")
      defaults.invoicenumber = `INV-${String(this.store.rows("invoices").length + 1001).padStart(5, "0")}-${autonumberSuffix()}`;
    if (principal.caller) defaults._createdonbehalfby_value = principal.caller.user.systemuserid;
    return defaults;
  }

  private baseCurrencyId(): string | null {
    const organization = this.store.rows("organizations")[0];
    return (organization?._basecurrencyid_value as string | undefined) ?? null;
  }

  private written(table: TableMetadata, row: Row, status: 200 | 201, headers: Record<string, string>, url: URL): WebApiResponse {
    const entityId = `${this.baseUrl()}${apiPath}/${table.entitySetName}(${row[table.primaryIdAttribute]})`;
    if (preferences(headers["prefer"]).get("return") === "representation") {
      const shape: Shape = { select: parseSelect(table, url.searchParams.get("$select")), expand: [], annotations: annotationFilter(headers["prefer"]).filter };
      return this.json(
        status,
        { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#${table.entitySetName}/$entity`, ...project(this.store, table, row, shape) },
        { "OData-EntityId": entityId, ETag: this.store.etag(row) },
      );
    }
    return { status: 204, headers: { "OData-EntityId": entityId } };
  }

  // ---------- queries ----------

  private checkOptions(url: URL, allowed: Set<string>): void {
    const seen = new Set<string>();
    for (const name of url.searchParams.keys()) {
      if (name.startsWith("$") && seen.has(name))
        throw new DataverseError(400, "0x0", `Query option '${name}' was specified more than once, but it must be specified at most once.`);
      seen.add(name);
      if (unsupportedOptions[name]) throw new DataverseError(400, "0x0", unsupportedOptions[name]!);
      if (name.startsWith("$") && !allowed.has(name)) throw new DataverseError(400, "0x0", `The query parameter ${name} is not supported here.`);
      if (name.startsWith("@")) throw new DataverseError(400, "0x0", `The simulator does not support parameter aliases ('${name}').`);
    }
  }

  private filtered(table: TableMetadata, params: URLSearchParams): Row[] {
    let rows = this.store.rows(table.entitySetName);
    const filter = params.get("$filter");
    if (filter) {
      const predicate = parseFilter(filter, (name) => {
        if (!readableProperty(table, name)) throw unknownProperty(table, name);
      });
      rows = rows.filter(predicate);
    }
    return rows;
  }

  /**
   * Change tracking (https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems):
   * `Prefer: odata.track-changes` answers every row and an `@odata.deltaLink`; the delta link answers the
   * rows changed since, and the rows deleted since as `$deletedEntity` entries. No $filter, $orderby,
   * $top or $expand with it.
   */
  private trackChanges(table: TableMetadata, url: URL, headers: Record<string, string>): InnerResponse {
    const params = url.searchParams;
    for (const name of params.keys()) {
      if (name !== "$select" && name !== "$deltatoken")
        throw new DataverseError(400, "0x80060888", `The query option '${name}' is not supported with change tracking.`);
    }
    if (!table.changeTracking) throw new DataverseError(400, "0x80060888", `Change tracking is not enabled for the entity '${table.logicalName}'.`);
    const select = parseSelect(table, params.get("$select"));
    const token = params.get("$deltatoken");
    // Tokens are what this organization gave out: "<version>!<time>", never from the future.
    const since = token === null ? undefined : /^(\d+)!\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.exec(token)?.[1] !== undefined ? Number(token.split("!")[0]) : Number.NaN;
    if (token !== null && (!Number.isInteger(since) || since! < 1 || since! > this.store.currentVersion))
      throw new DataverseError(400, "0x80060888", "The delta token is not valid. Use the @odata.deltaLink of the previous change-tracking response unchanged.");
    const requested = preferences(headers["prefer"]).get("odata.maxpagesize");
    const pageSize = requested && Number(requested) > 0 && Number(requested) <= maxPageSize ? Number(requested) : maxPageSize;
    const changed = this.store
      .rows(table.entitySetName)
      .filter((row) => since === undefined || Number(row.versionnumber) > since)
      .map((row) => ({
        version: Number(row.versionnumber),
        entry: project(this.store, table, row, { select, expand: [], annotations: noAnnotations }) as Row,
      }));
    const deleted =
      since === undefined
        ? []
        : [...(this.store.deleted.get(table.entitySetName) ?? new Map<string, number>())]
            .filter(([, version]) => version > since)
            .map(([id, version]) => ({
              version,
              entry: { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#${table.entitySetName}/$deletedEntity`, id, reason: "deleted" } as Row,
            }));
    const entries = [...changed, ...deleted].sort((a, b) => a.version - b.version);
    const page = entries.slice(0, pageSize);
    const link = (version: number) => {
      const next = new URLSearchParams(select ? { $select: select.join(",") } : {});
      next.set("$deltatoken", `${version}!${new Date().toISOString()}`);
      return `${this.baseUrl()}${apiPath}/${table.entitySetName}?${next.toString()}`;
    };
    const more = entries.length > page.length;
    const body: Row = {
      "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#${table.entitySetName}${select ? `(${select.join(",")})` : ""}${token === null ? "" : "/$delta"}`,
      value: page.map((item) => item.entry),
      ...(more ? { "@odata.nextLink": link(page.at(-1)!.version) } : { "@odata.deltaLink": link(Math.max(this.store.currentVersion, since ?? 0)) }),
    };
    return this.json(200, body, { "Preference-Applied": "odata.track-changes" });
  }

  private query(table: TableMetadata, url: URL, headers: Record<string, string>): InnerResponse {
    const params = url.searchParams;
    if (preferences(headers["prefer"]).has("odata.track-changes") || params.has("$deltatoken")) return this.trackChanges(table, url, headers);
    this.checkOptions(url, supportedOptions);
    const countOption = params.get("$count");
    if (countOption !== null && countOption !== "true" && countOption !== "false")
      throw new DataverseError(400, "0x0", `'${countOption}' is not a valid count option.`);
    const select = parseSelect(table, params.get("$select"));
    const expand = parseExpand(table, params.get("$expand"));
    const keys = params.get("$orderby")
      ? parseOrderKeys(params.get("$orderby")!, (name) => {
          if (!readableProperty(table, name)) throw unknownProperty(table, name);
        })
      : [];
    // The primary key breaks ties, so the paging cookie names one position.
    const order = comparatorOf([...keys, { field: table.primaryIdAttribute, sign: 1 }]);
    const rows = this.filtered(table, params).sort(order);
    const count = rows.length;

    const prefer = headers["prefer"] ?? "";
    const requested = preferences(prefer).get("odata.maxpagesize");
    if (requested !== undefined && !/^\d+$/.test(requested))
      throw new DataverseError(400, "0x80060888", `The value '${requested}' of the preference odata.maxpagesize is not a positive whole number.`);
    // Larger page sizes are ignored (5,000); with a page size, $top is ignored (documented).
    const pageSize = requested && Number(requested) > 0 && Number(requested) <= maxPageSize ? Number(requested) : maxPageSize;
    const top = params.get("$top");
    let limit: number | undefined;
    if (top !== null) {
      const value = /^\d+$/.test(top) ? Number(top) : Number.NaN;
      if (!Number.isInteger(value) || value < 0)
        throw new DataverseError(
          400,
          "0x0",
          `Invalid value '${top}' for $top query option found. The $top query option requires a non-negative integer value.`,
        );
      if (!requested) limit = Math.min(value, maxPageSize);
    }

    let start = 0;
    let pageNumber = 1;
    const token = params.get("$skiptoken");
    if (token !== null) {
      const position = decodeSkipToken(token, keys, table.primaryIdAttribute, (field) => {
        const type = readableProperty(table, field)?.type;
        return type === "Boolean"
          ? "boolean"
          : ["Integer", "BigInt", "Decimal", "Double", "Money", "Picklist", "State", "Status"].includes(type ?? "")
            ? "number"
            : "text";
      });
      if (!position)
        throw new DataverseError(400, "0x80040203", "The paging cookie ($skiptoken) is not valid. Use the @odata.nextLink of the previous page unchanged.");
      pageNumber = position.pageNumber;
      start = rows.findIndex((row) => order(row, position.last) > 0);
      if (start < 0) start = rows.length;
    }
    const size = limit ?? pageSize;
    const page = rows.slice(start, start + size);
    let nextLink: string | undefined;
    if (limit === undefined && start + size < rows.length && page.length > 0) {
      const next = new URLSearchParams(params);
      next.set("$skiptoken", encodeSkipToken(pageNumber + 1, keys, table.primaryIdAttribute, page[0]!, page.at(-1)!));
      nextLink = `${this.baseUrl()}${apiPath}/${table.entitySetName}?${next.toString().replace(/\+/g, "%20")}`;
    }
    const annotations = annotationFilter(prefer);
    const applied = [requested && `odata.maxpagesize=${pageSize}`, annotations.applied].filter(Boolean).join(", ");
    const body: Row = {
      "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#${table.entitySetName}${select ? `(${select.join(",")})` : ""}`,
      ...(params.get("$count") === "true" && { "@odata.count": Math.min(count, maxPageSize) }),
      value: page.map((row) => project(this.store, table, row, { select, expand, annotations: annotations.filter })),
      ...(nextLink && { "@odata.nextLink": nextLink }),
    };
    return this.json(200, body, applied ? { "Preference-Applied": applied } : {});
  }

  // ---------- bulk messages ----------

  /**
   * CreateMultiple, UpdateMultiple and UpsertMultiple (https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations):
   * only on tables that have them; every target names its type; all or nothing on standard tables.
   * CreateMultiple answers the ids, UpdateMultiple and UpsertMultiple answer 204.
   */
  private bulk(table: TableMetadata, action: string, body: Row, principal: Principal): WebApiResponse {
    const message = action.replace("Microsoft.Dynamics.CRM.", "");
    if (!["CreateMultiple", "UpdateMultiple", "UpsertMultiple"].includes(message) || !table.bulkMessages) {
      throw new DataverseError(404, "0x8006088a", `Resource not found for the segment '${action}'.`);
    }
    const targets = body.Targets as Row[] | undefined;
    for (const name of Object.keys(body)) {
      if (name !== "Targets") throw new DataverseError(400, "0x80060888", `'${name}' is not a valid parameter for the operation '${message}'.`);
    }
    if (!Array.isArray(targets) || targets.length === 0) throw new DataverseError(400, "0x80040203", "Required field 'Targets' is missing or empty.");
    const notObject = targets.findIndex((target) => typeof target !== "object" || target === null || Array.isArray(target));
    if (notObject >= 0) throw payloadError(table, `Microsoft.OData.ODataException: Targets[${notObject}] is not an entity (a JSON object was expected).`);
    const snapshot = this.store.snapshot();
    try {
      const ids: string[] = [];
      const missing: string[] = [];
      targets.forEach((target, index) => {
        if (target["@odata.type"] === undefined)
          throw payloadError(
            table,
            `Microsoft.OData.ODataException: Targets[${index}] has no '@odata.type'; every item of Targets must name its type ('Microsoft.Dynamics.CRM.${table.logicalName}').`,
          );
        const { "@odata.id": reference, ...values } = target;
        const key =
          reference !== undefined
            ? this.keyOfReference(table, String(reference))
            : values[table.primaryIdAttribute] !== undefined
              ? { id: String(values[table.primaryIdAttribute]).toLowerCase() }
              : undefined;
        const existing = key && this.find(table, key);
        if (message === "CreateMultiple") {
          ids.push(String(this.createRow(table, values, principal)[table.primaryIdAttribute]));
        } else if (message === "UpdateMultiple") {
          if (!key)
            throw new DataverseError(400, "0x80040203", `Targets[${index}]: the primary key ${table.primaryIdAttribute} is required for UpdateMultiple.`);
          if (!existing) missing.push(key.id ?? JSON.stringify(key.alternate));
          else this.updateRow(table, existing, values, principal);
        } else if (existing) {
          this.updateRow(table, existing, values, principal);
        } else {
          if (!key)
            throw new DataverseError(400, "0x80040203", `Targets[${index}]: UpsertMultiple needs the primary key or an '@odata.id' with an alternate key.`);
          this.createRow(table, { ...values, ...(key.id ? { [table.primaryIdAttribute]: key.id } : key.alternate) }, principal);
        }
      });
      if (missing.length > 0) throw new DataverseError(404, "0x80040217", `${table.logicalName} With Ids = ${missing.join(", ")} Do Not Exist`);
      if (message === "CreateMultiple") {
        return {
          ...this.json(200, { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse`, Ids: ids }),
          rows: targets.length,
        };
      }
      return { status: 204, headers: {}, rows: targets.length };
    } catch (error) {
      this.store.restore(snapshot);
      throw error;
    }
  }

  private keyOfReference(table: TableMetadata, reference: string): { id?: string; alternate?: Row } {
    const match = /^(?:.*\/)?([a-z_]+)\((.+)\)$/.exec(reference);
    if (!match || match[1] !== table.entitySetName)
      throw payloadError(table, `Microsoft.OData.ODataException: The '@odata.id' value '${reference}' does not identify a row of '${table.entitySetName}'.`);
    return this.keyOf(table, match[2]!);
  }

  // ---------- $batch ----------

  /**
   * $batch (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api):
   * at most 1000 operations; parts run in order, a change set all or nothing, `$n` Content-ID references in
   * URLs and `@odata.bind` values; the first failure stops the batch (outer 400) unless
   * `Prefer: odata.continue-on-error` (outer 200).
   */
  batch(contentType: string | undefined, body: string, caller: Caller, continueOnError: boolean, outerHeaders: Record<string, string> = {}): WebApiResponse {
    try {
      return this.runBatch(contentType, body, caller, continueOnError, outerHeaders);
    } catch (error) {
      return this.answerFor(error);
    }
  }

  private runBatch(
    contentType: string | undefined,
    body: string,
    caller: Caller,
    continueOnError: boolean,
    outerHeaders: Record<string, string>,
  ): WebApiResponse {
    const boundary = boundaryOf(contentType);
    if (!boundary) return this.error(400, "0x80048d19", "The batch request must have a multipart/mixed content type with a boundary.");
    const parts = splitParts(body, boundary);
    const operations = parts.reduce((sum, part) => {
      const changeSet = boundaryOf(part.headers["content-type"]);
      return sum + (changeSet ? splitParts(part.body, changeSet).length : 1);
    }, 0);
    if (operations > maxBatchOperations) {
      return this.error(
        400,
        "0x80048d19",
        `The current batch message contains too many parts. Only batch messages with a maximum number of '${maxBatchOperations}' query operations, including changeset operations, are allowed.`,
      );
    }
    if (parts.length === 0) return this.error(400, "0x80048d19", "The batch request holds no parts (is the boundary right?).");
    // Parts address the service root when relative, and act as the batch's caller (impersonation included).
    const inner = (part: { headers: Record<string, string>; body: string }) => {
      const request = parseInnerRequest(part);
      if (!/^(https?:\/\/|\/|\$)/.test(request.url)) request.url = `${apiPath}/${request.url}`;
      for (const name of ["callerobjectid", "mscrmcallerid"]) if (outerHeaders[name] && !request.headers[name]) request.headers[name] = outerHeaders[name]!;
      return request;
    };
    const results: (InnerResponse | { changeSet: InnerResponse[] })[] = [];
    let failed = false;
    for (const part of parts) {
      if (failed && !continueOnError) break;
      const changeSetBoundary = boundaryOf(part.headers["content-type"]);
      if (!changeSetBoundary) {
        const response = this.handle(inner(part), caller);
        if (response.status >= 400) failed = true;
        results.push(stripRows(response));
        continue;
      }
      const snapshot = this.store.snapshot();
      const responses: InnerResponse[] = [];
      const references = new Map<string, string>();
      const contentIds = new Set<string>();
      for (const changePart of splitParts(part.body, changeSetBoundary)) {
        if (boundaryOf(changePart.headers["content-type"])) throw new DataverseError(400, "0x80048d19", "Change sets cannot be nested in a batch request.");
        const request = inner(changePart);
        let response: InnerResponse;
        if (request.contentId !== undefined && contentIds.has(request.contentId)) {
          response = this.error(
            400,
            "0x80048d19",
            `The content ID '${request.contentId}' was found more than once in the same change set. Content IDs must be unique within a change set.`,
          );
        } else if (request.method === "GET") {
          response = this.error(400, "0x80048d19", "GET requests are not allowed inside a change set.");
        } else {
          const resolved = resolveReferences(request, references, this.baseUrl());
          response = resolved instanceof DataverseError ? this.answerFor(resolved) : stripRows(this.handle(resolved, caller));
        }
        if (request.contentId !== undefined) {
          contentIds.add(request.contentId);
          response = { ...response, contentId: request.contentId };
        }
        if (response.status >= 400) {
          this.store.restore(snapshot);
          responses.splice(0, responses.length, response);
          failed = true;
          break;
        }
        if (request.contentId && response.headers["OData-EntityId"]) references.set(request.contentId, response.headers["OData-EntityId"]);
        responses.push(response);
      }
      results.push(responses.length === 1 && responses[0]!.status >= 400 ? responses[0]! : { changeSet: responses });
    }
    const responseBoundary = `batchresponse_${Math.random().toString(16).slice(2)}`;
    return {
      status: failed && !continueOnError ? 400 : 200,
      headers: { "Content-Type": `multipart/mixed; boundary=${responseBoundary}` },
      body: formatResponses(results, responseBoundary),
      rows: operations,
    };
  }

  json(status: number, body: unknown, headers: Record<string, string> = {}): InnerResponse {
    return { status, headers: { "Content-Type": "application/json; odata.metadata=minimal", ...headers }, body: JSON.stringify(body) };
  }

  error(status: number, code: string, message: string, headers: Record<string, string> = {}): InnerResponse {
    return this.json(status, { error: { code, message } }, headers);
  }
}

/** `$1` at the start of a URL, and as an `@odata.bind` value, stand for the entity a change-set part created. */
function resolveReferences(request: InnerRequest, references: Map<string, string>, baseUrl: string): InnerRequest | DataverseError {
  const lookup = (reference: string) => references.get(reference.slice(1));
  let url = request.url;
  const urlReference = /^\$(\d+)/.exec(url)?.[0];
  if (urlReference) {
    const target = lookup(urlReference);
    if (!target) return new DataverseError(400, "0x80060888", `Content-ID Reference: '${urlReference}' does not exist in the batch context.`);
    url = url.replace(urlReference, target.replace(baseUrl, ""));
  }
  let body = request.body;
  if (body) {
    let problem: DataverseError | undefined;
    let parsed: Row;
    try {
      parsed = objectBody(body);
    } catch (error) {
      return error instanceof DataverseError
        ? error
        : new DataverseError(400, "0x80048d19", "Error identified in Payload provided by the user: the body is not valid JSON.");
    }
    for (const [name, value] of Object.entries(parsed)) {
      if (name.endsWith("@odata.bind") && typeof value === "string" && /^\$\d+$/.test(value)) {
        const target = lookup(value);
        if (!target) problem = new DataverseError(400, "0x80060888", `Content-ID Reference: '${value}' does not exist in the batch context.`);
        else parsed[name] = target.replace(/^.*\/api\/data\/v9\.\d\//, "/");
      }
    }
    if (problem) return problem;
    body = JSON.stringify(parsed);
  }
  return { ...request, url, body };
}

/** The preferences of a Prefer header, by name (`odata.maxpagesize=10` -> "odata.maxpagesize" => "10"). */
export function preferences(header: string | undefined): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of (header ?? "").split(",")) {
    const [name, ...value] = part.trim().split("=");
    if (name) found.set(name.trim().toLowerCase(), value.join("=").trim().replace(/^"|"$/g, ""));
  }
  return found;
}

/** A request body must be one JSON object (an empty body is an empty object). */
function objectBody(text: string | undefined): Row {
  if (!text || text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DataverseError(400, "0x80048d19", `Error identified in Payload provided by the user: the body is not valid JSON (${(error as Error).message}).`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new DataverseError(400, "0x80048d19", "Error identified in Payload provided by the user: a JSON object was expected for the entity.");
  }
  return parsed as Row;
}

function stripRows(response: WebApiResponse): InnerResponse {
  const { rows: _rows, ...rest } = response;
  return rest;
}

function autonumberSuffix(): string {
  return Math.random().toString(36).slice(2, 8).toUpperCase();
}
