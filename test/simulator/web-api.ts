import type { EntraSimulator } from "./entra";
import { DataverseError, type EntityStore, entitySets } from "./entity-store";
import type { Fixture } from "./fixture";
import { type InnerRequest, type InnerResponse, boundaryOf, formatResponses, parseInnerRequest, splitParts } from "./multipart";
import { ODataQueryError, type Row, parseFilter, parseOrderBy } from "./odata-query";

export const apiPath = "/api/data/v9.2";
const maxPageSize = 5000;
const maxBulkTargets = 1000;
const impersonatingRoles = new Set(["System Administrator", "Integration"]);

export interface Caller {
  systemuserid: string;
}

/**
 * The Dataverse Web API v9.2 over an EntityStore: WhoAmI, RetrieveVersion, entity sets with the OData
 * query options, create/update/upsert/delete with ETags, the bulk messages and $batch with change sets.
 */
export class WebApi {
  constructor(
    private readonly store: EntityStore,
    private readonly fixture: Fixture,
    private readonly baseUrl: () => string,
    private readonly roles: Map<string, string[]>,
    readonly entra: EntraSimulator,
  ) {}

  /** The systemuserid the request acts as: the token's user, or the impersonated one (MSCRMCallerID). */
  effectiveCaller(caller: Caller, headers: Record<string, string>): string {
    const impersonated = headers["mscrmcallerid"];
    if (!impersonated) return caller.systemuserid;
    const roles = this.roles.get(caller.systemuserid) ?? [];
    if (!roles.some((role) => impersonatingRoles.has(role))) {
      throw new DataverseError(403, "0x80040220", `Principal user (Id=${caller.systemuserid}, type=8) is missing prvActOnBehalfOfAnotherUser privilege.`);
    }
    const target = this.store.get("systemusers", impersonated);
    if (!target || target.isdisabled) throw new DataverseError(404, "0x80040217", `systemuser With Id = ${impersonated} Does Not Exist`);
    return String(target.systemuserid);
  }

  handle(request: InnerRequest, caller: Caller): InnerResponse {
    try {
      return this.route(request, caller);
    } catch (error) {
      if (error instanceof DataverseError) return this.error(error.status, error.code, error.message);
      if (error instanceof ODataQueryError) return this.error(400, "0x80060888", error.message);
      if (error instanceof SyntaxError) return this.error(400, "0x80040203", `Invalid JSON: ${error.message}`);
      throw error;
    }
  }

  private route(request: InnerRequest, caller: Caller): InnerResponse {
    const url = new URL(request.url, this.baseUrl());
    const path = decodeURIComponent(url.pathname.slice(apiPath.length + 1));
    const callerId = this.effectiveCaller(caller, request.headers);
    const userRow = this.store.require("systemusers", callerId);
    this.checkAccess(userRow);

    if (path === "" && request.method === "GET") {
      return this.json(200, { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata`, value: Object.keys(entitySets).map((name) => ({ name, kind: "EntitySet", url: name })) });
    }
    if (/^WhoAmI(\(\))?$/.test(path) && request.method === "GET") {
      return this.json(200, {
        "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`,
        BusinessUnitId: "b0b0b0b0-0000-4000-8000-000000000001",
        UserId: callerId,
        OrganizationId: this.fixture.organization.organizationid,
      });
    }
    if (/^RetrieveVersion(\(\))?$/.test(path) && request.method === "GET") {
      return this.json(200, { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse`, Version: this.fixture.organization.version });
    }
    const bulk = /^([a-z_]+)\/Microsoft\.Dynamics\.CRM\.(CreateMultiple|UpdateMultiple|UpsertMultiple)$/.exec(path);
    if (bulk && request.method === "POST") return this.bulk(bulk[1]!, bulk[2]!, JSON.parse(request.body || "{}"), callerId);

    const navigation = /^([a-z_]+)\(([0-9a-fA-F-]{36})\)\/([a-z_]+)$/.exec(path);
    if (navigation && request.method === "GET") return this.navigate(navigation[1]!, navigation[2]!, navigation[3]!, userRow);

    const single = /^([a-z_]+)\(([0-9a-fA-F-]{36})\)$/.exec(path);
    if (single) return this.single(request, single[1]!, single[2]!.toLowerCase(), callerId, userRow);

    const collection = /^([a-z_]+)$/.exec(path);
    if (collection) {
      const set = collection[1]!;
      this.store.meta(set);
      this.requireRoles(userRow);
      if (request.method === "GET") return this.query(set, url, request.headers);
      if (request.method === "POST") {
        const row = this.store.create(set, JSON.parse(request.body || "{}"), callerId);
        return this.written(set, row, 201, request.headers);
      }
    }
    return this.error(404, "0x80060888", `Resource not found for the segment '${path.split("/")[0]}'.`);
  }

  /** Dataverse refuses disabled and unlicensed users on every call; users without roles can only see themselves. */
  private checkAccess(user: Row): void {
    if (user.isdisabled) {
      throw new DataverseError(403, "0x80040225", `The user with SystemUserId=${user.systemuserid} in OrganizationContext=${this.fixture.organization.organizationid} is disabled. Disabled users cannot access the system.`);
    }
    if (user.islicensed === false) throw new DataverseError(403, "0x80072560", "The user is not a member of the organization. The user has no license for Dynamics 365 Sales.");
  }

  private requireRoles(user: Row): void {
    if ((this.roles.get(String(user.systemuserid)) ?? []).length === 0) {
      throw new DataverseError(403, "0x80040220", `Principal user (Id=${user.systemuserid}, type=8, roleCount=0, privilegeCount=0, accessMode=0), is missing prvReadAccount privilege.`);
    }
  }

  private single(request: InnerRequest, set: string, id: string, callerId: string, user: Row): InnerResponse {
    const ownUser = set === "systemusers" && id === String(user.systemuserid);
    if (!(ownUser && request.method === "GET")) this.requireRoles(user);
    const url = new URL(request.url, this.baseUrl());
    switch (request.method) {
      case "GET": {
        const row = this.store.require(set, id);
        return this.json(200, { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#${set}/$entity`, ...this.project(set, row, url.searchParams.get("$select")) });
      }
      case "PATCH": {
        const existing = this.store.get(set, id);
        const ifMatch = request.headers["if-match"];
        const ifNoneMatch = request.headers["if-none-match"];
        if (ifMatch && !existing) throw new DataverseError(404, "0x80040217", `${this.store.meta(set).logicalName} With Id = ${id} Does Not Exist`);
        if (ifMatch && ifMatch !== "*" && existing && ifMatch !== this.store.etag(existing)) {
          throw new DataverseError(412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided.");
        }
        if (ifNoneMatch === "*" && existing) throw new DataverseError(412, "0x80040237", "A record with matching key values already exists.");
        const body = JSON.parse(request.body || "{}") as Row;
        const { row, created } = existing ? { row: this.store.update(set, id, body, callerId), created: false } : this.store.upsert(set, id, body, callerId);
        return this.written(set, row, created ? 201 : 200, request.headers);
      }
      case "DELETE":
        this.store.delete(set, id);
        return { status: 204, headers: {} };
      default:
        return this.error(405, "0x80060888", `The HTTP method '${request.method}' is not allowed for this resource.`);
    }
  }

  private navigate(set: string, id: string, property: string, user: Row): InnerResponse {
    if (set !== "systemusers" || property !== "systemuserroles_association") {
      return this.error(404, "0x80060888", `Could not find a property named '${property}' on type 'Microsoft.Dynamics.CRM.${this.store.meta(set).logicalName}'.`);
    }
    if (id.toLowerCase() !== String(user.systemuserid)) this.requireRoles(user);
    this.store.require(set, id);
    const names = this.roles.get(id.toLowerCase()) ?? [];
    const value = this.store.rows("roles").filter((role) => names.includes(String(role.name))).map((role) => ({ "@odata.etag": this.store.etag(role), roleid: role.roleid, name: role.name }));
    return this.json(200, { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#roles(name,roleid)`, value });
  }

  private query(set: string, url: URL, headers: Record<string, string>): InnerResponse {
    const params = url.searchParams;
    let rows = this.store.rows(set);
    const filter = params.get("$filter");
    if (filter) {
      const predicate = parseFilter(filter);
      rows = rows.filter(predicate);
    }
    const orderBy = params.get("$orderby");
    if (orderBy) rows = [...rows].sort(parseOrderBy(orderBy));
    const count = rows.length;
    const top = params.get("$top");
    const preferred = /odata\.maxpagesize=(\d+)/.exec(headers["prefer"] ?? "")?.[1];
    const pageSize = Math.min(Number(preferred ?? maxPageSize), maxPageSize);
    const skip = params.has("$skiptoken") ? (JSON.parse(Buffer.from(params.get("$skiptoken")!, "base64url").toString()) as { offset: number }).offset : 0;
    let page: Row[];
    let nextLink: string | undefined;
    if (top !== null) {
      const limit = Number(top);
      if (!Number.isInteger(limit) || limit < 0) throw new DataverseError(400, "0x80060888", `Invalid value for $top: '${top}'.`);
      page = rows.slice(0, Math.min(limit, maxPageSize));
    } else {
      page = rows.slice(skip, skip + pageSize);
      if (skip + pageSize < rows.length) {
        const next = new URLSearchParams(params);
        next.set("$skiptoken", Buffer.from(JSON.stringify({ offset: skip + pageSize })).toString("base64url"));
        nextLink = `${this.baseUrl()}${apiPath}/${set}?${next.toString()}`;
      }
    }
    const select = params.get("$select");
    const body: Row = {
      "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#${set}${select ? `(${select})` : ""}`,
      ...(params.get("$count") === "true" && { "@odata.count": count }),
      value: page.map((row) => this.project(set, row, select)),
      ...(nextLink && { "@odata.nextLink": nextLink }),
    };
    return this.json(200, body, preferred ? { "Preference-Applied": `odata.maxpagesize=${pageSize}` } : {});
  }

  private bulk(set: string, message: string, body: { Targets?: Row[] }, callerId: string): InnerResponse {
    const { logicalName, key } = this.store.meta(set);
    const targets = body.Targets;
    if (!Array.isArray(targets) || targets.length === 0) throw new DataverseError(400, "0x80040203", "Targets is required and must not be empty.");
    if (targets.length > maxBulkTargets) throw new DataverseError(400, "0x80040203", `The number of Targets (${targets.length}) exceeds the maximum of ${maxBulkTargets}.`);
    const snapshot = this.store.snapshot();
    try {
      const ids = targets.map((target, index) => {
        if (target["@odata.type"] !== `Microsoft.Dynamics.CRM.${logicalName}`) {
          throw new DataverseError(400, "0x80040203", `Targets[${index}]: the '@odata.type' property must be 'Microsoft.Dynamics.CRM.${logicalName}'.`);
        }
        const id = target[key] === undefined ? undefined : String(target[key]);
        if (message === "CreateMultiple") return this.store.create(set, target, callerId)[key];
        if (!id) throw new DataverseError(400, "0x80040203", `Targets[${index}]: ${key} is required for ${message}.`);
        if (message === "UpdateMultiple") return this.store.update(set, id, target, callerId)[key];
        return this.store.upsert(set, id, target, callerId).row[key];
      });
      if (message === "UpdateMultiple") return { status: 204, headers: {} };
      return this.json(200, { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#Microsoft.Dynamics.CRM.${message}Response`, Ids: ids });
    } catch (error) {
      this.store.restore(snapshot);
      throw error;
    }
  }

  /** $batch: plain parts run one by one; a change set runs all or nothing. */
  batch(contentType: string | undefined, body: string, caller: Caller, continueOnError: boolean): InnerResponse {
    const boundary = boundaryOf(contentType);
    if (!boundary) return this.error(400, "0x80048d19", "The batch request must have a multipart/mixed content type with a boundary.");
    const results: (InnerResponse | { changeSet: InnerResponse[] })[] = [];
    let failed = false;
    for (const part of splitParts(body, boundary)) {
      if (failed && !continueOnError) break;
      const inner = boundaryOf(part.headers["content-type"]);
      if (inner) {
        const snapshot = this.store.snapshot();
        const responses: InnerResponse[] = [];
        const ids = new Map<string, string>();
        for (const changePart of splitParts(part.body, inner)) {
          const request = parseInnerRequest(changePart);
          request.url = request.url.replace(/^\$(\d+)/, (_match, id: string) => ids.get(id) ?? `$${id}`);
          if (request.method === "GET") {
            responses.splice(0, responses.length, this.error(400, "0x80048d19", "GET requests are not allowed inside a change set."));
            break;
          }
          const response = { ...this.handle(request, caller), ...(request.contentId !== undefined && { contentId: request.contentId }) };
          if (response.status >= 400) {
            this.store.restore(snapshot);
            responses.splice(0, responses.length, response);
            failed = true;
            break;
          }
          if (request.contentId && response.headers["OData-EntityId"]) ids.set(request.contentId, response.headers["OData-EntityId"]);
          responses.push(response);
        }
        results.push(responses.length === 1 && responses[0]!.status >= 400 ? responses[0]! : { changeSet: responses });
      } else {
        const response = this.handle(parseInnerRequest(part), caller);
        if (response.status >= 400) failed = true;
        results.push(response);
      }
    }
    const responseBoundary = `batchresponse_${Math.random().toString(16).slice(2)}`;
    return { status: 200, headers: { "Content-Type": `multipart/mixed; boundary=${responseBoundary}` }, body: formatResponses(results, responseBoundary) };
  }

  private written(set: string, row: Row, createdStatus: 200 | 201, headers: Record<string, string>): InnerResponse {
    const entityId = `${this.baseUrl()}${apiPath}/${set}(${row[this.store.meta(set).key]})`;
    if (/return=representation/.test(headers["prefer"] ?? "")) {
      return this.json(createdStatus === 201 ? 201 : 200, { "@odata.context": `${this.baseUrl()}${apiPath}/$metadata#${set}/$entity`, ...this.project(set, row, null) }, { "OData-EntityId": entityId });
    }
    return { status: 204, headers: { "OData-EntityId": entityId } };
  }

  private project(set: string, row: Row, select: string | null): Row {
    const { key } = this.store.meta(set);
    const { versionnumber: _version, ...visible } = row;
    const fields = select?.split(",").map((field) => field.trim()).filter(Boolean);
    const projected: Row = { "@odata.etag": this.store.etag(row) };
    if (!fields) return { ...projected, ...visible };
    for (const field of [...fields, key]) projected[field] = visible[field] ?? null;
    return projected;
  }

  json(status: number, body: unknown, headers: Record<string, string> = {}): InnerResponse {
    return { status, headers: { "Content-Type": "application/json; odata.metadata=minimal", ...headers }, body: JSON.stringify(body) };
  }

  error(status: number, code: string, message: string, headers: Record<string, string> = {}): InnerResponse {
    return this.json(status, { error: { code, message } }, headers);
  }
}
