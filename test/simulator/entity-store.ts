import { randomUUID } from "node:crypto";
import type { Row } from "./odata-query";

/** Entity sets the simulator knows: logical name and primary key, as in Dataverse metadata. */
export const entitySets: Record<string, { logicalName: string; key: string }> = {
  accounts: { logicalName: "account", key: "accountid" },
  contacts: { logicalName: "contact", key: "contactid" },
  systemusers: { logicalName: "systemuser", key: "systemuserid" },
  roles: { logicalName: "role", key: "roleid" },
  organizations: { logicalName: "organization", key: "organizationid" },
  solutions: { logicalName: "solution", key: "solutionid" },
  salesorders: { logicalName: "salesorder", key: "salesorderid" },
  transactioncurrencies: { logicalName: "transactioncurrency", key: "transactioncurrencyid" },
  uomschedules: { logicalName: "uomschedule", key: "uomscheduleid" },
  uoms: { logicalName: "uom", key: "uomid" },
  products: { logicalName: "product", key: "productid" },
  pricelevels: { logicalName: "pricelevel", key: "pricelevelid" },
  invoices: { logicalName: "invoice", key: "invoiceid" },
  nav_connections: { logicalName: "nav_connection", key: "nav_connectionid" },
};
const setOfLogicalName = Object.fromEntries(Object.entries(entitySets).map(([set, meta]) => [meta.logicalName, set]));

export class DataverseError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Rows by entity set, with the bookkeeping columns Dataverse stamps on every write. */
export class EntityStore {
  private sets = new Map<string, Map<string, Row>>();
  private version = 1000;

  constructor(private readonly now: () => Date = () => new Date()) {
    for (const set of Object.keys(entitySets)) this.sets.set(set, new Map());
  }

  meta(set: string) {
    const meta = entitySets[set];
    if (!meta) throw new DataverseError(404, "0x80060888", `Resource not found for the segment '${set}'.`);
    return meta;
  }

  rows(set: string): Row[] {
    this.meta(set);
    return [...this.sets.get(set)!.values()];
  }

  get(set: string, id: string): Row | undefined {
    this.meta(set);
    return this.sets.get(set)!.get(id.toLowerCase());
  }

  require(set: string, id: string): Row {
    const row = this.get(set, id);
    if (!row) throw new DataverseError(404, "0x80040217", `${this.meta(set).logicalName} With Id = ${id} Does Not Exist`);
    return row;
  }

  /** Seeds a row as-is (fixtures), stamping only what is missing. */
  seed(set: string, row: Row): Row {
    const { key } = this.meta(set);
    const id = String(row[key] ?? randomUUID()).toLowerCase();
    const stamped = { createdon: this.now().toISOString(), modifiedon: this.now().toISOString(), ...row, [key]: id, versionnumber: ++this.version };
    this.sets.get(set)!.set(id, stamped);
    return stamped;
  }

  create(set: string, body: Row, callerId: string): Row {
    const { key } = this.meta(set);
    const id = String(body[key] ?? randomUUID()).toLowerCase();
    if (!guid.test(id)) throw new DataverseError(400, "0x80040203", `Invalid GUID for ${key}: '${id}'.`);
    if (this.sets.get(set)!.has(id)) throw new DataverseError(412, "0x80040237", "A record with matching key values already exists.");
    const now = this.now().toISOString();
    // Dataverse creates rows Active (statecode 0, statuscode 1) unless told otherwise.
    const row: Row = { statecode: 0, statuscode: 1, ...this.resolveBindings(body), [key]: id, createdon: now, _createdby_value: callerId };
    this.stamp(row, callerId);
    this.sets.get(set)!.set(id, row);
    return row;
  }

  update(set: string, id: string, body: Row, callerId: string): Row {
    const existing = this.require(set, id);
    const { key } = this.meta(set);
    const changes = this.resolveBindings(body);
    delete changes[key];
    const row: Row = { ...existing, ...changes };
    this.stamp(row, callerId);
    this.sets.get(set)!.set(id.toLowerCase(), row);
    return row;
  }

  upsert(set: string, id: string, body: Row, callerId: string): { row: Row; created: boolean } {
    if (this.get(set, id)) return { row: this.update(set, id, body, callerId), created: false };
    return { row: this.create(set, { ...body, [this.meta(set).key]: id }, callerId), created: true };
  }

  delete(set: string, id: string): void {
    this.require(set, id);
    this.sets.get(set)!.delete(id.toLowerCase());
  }

  etag(row: Row): string {
    return `W/"${row.versionnumber}"`;
  }

  /** For change sets: all or nothing. */
  snapshot(): Map<string, Map<string, Row>> {
    return new Map([...this.sets].map(([set, rows]) => [set, new Map(rows)]));
  }

  restore(snapshot: Map<string, Map<string, Row>>): void {
    this.sets = snapshot;
  }

  private stamp(row: Row, callerId: string): void {
    row.modifiedon = this.now().toISOString();
    row._modifiedby_value = callerId;
    row.versionnumber = ++this.version;
  }

  /** `parentcustomerid_account@odata.bind: "/accounts(id)"` -> `_parentcustomerid_value`. */
  private resolveBindings(body: Row): Row {
    const row: Row = {};
    for (const [name, value] of Object.entries(body)) {
      if (name.startsWith("@odata.")) continue;
      if (!name.endsWith("@odata.bind")) {
        row[name] = value;
        continue;
      }
      let attribute = name.slice(0, -"@odata.bind".length);
      const suffix = attribute.lastIndexOf("_");
      if (suffix > 0 && setOfLogicalName[attribute.slice(suffix + 1)]) attribute = attribute.slice(0, suffix);
      if (value === null) {
        row[`_${attribute}_value`] = null;
        continue;
      }
      const match = /^\/?([a-z_]+)\(([0-9a-f-]{36})\)$/i.exec(String(value).replace(/^.*\/api\/data\/v9\.\d\//, "/"));
      if (!match) throw new DataverseError(400, "0x80048d19", `Invalid value for ${name}: '${String(value)}'.`);
      this.require(match[1]!, match[2]!);
      row[`_${attribute}_value`] = match[2]!.toLowerCase();
    }
    return row;
  }
}
