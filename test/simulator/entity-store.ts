import { randomUUID } from "node:crypto";
import { type TableMetadata, allTables, attributeOf, tableOfSet } from "./metadata";
import type { Row } from "./odata-query";

export class DataverseError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Rows by entity set, with the bookkeeping columns Dataverse stamps on every write (createdon, modifiedon,
 * createdby, modifiedby, versionnumber) and the columns it derives (fullname). Rows hold properties as the
 * Web API shows them: plain columns by logical name, lookups as `_name_value`. Validation against the
 * metadata is the Web API's job (row-validation.ts); the store trusts what it is given, so tests can seed
 * and edit rows as a CRM user would.
 */
export class EntityStore {
  private sets = new Map<string, Map<string, Row>>();
  private version = 1000;
  /** Ids deleted per set, with the version of the deletion (change tracking reports them). */
  readonly deleted = new Map<string, Map<string, number>>();

  constructor(private readonly now: () => Date = () => new Date()) {
    for (const table of allTables) this.sets.set(table.entitySetName, new Map());
  }

  meta(set: string): TableMetadata & { key: string } {
    const table = tableOfSet(set);
    if (!table) throw new DataverseError(404, "0x8006088a", `Resource not found for the segment '${set}'.`);
    return { ...table, key: table.primaryIdAttribute };
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
    if (!row) throw new DataverseError(404, "0x80040217", `${this.meta(set).logicalName} With Id = ${id.toLowerCase()} Does Not Exist`);
    return row;
  }

  /** Seeds a row as-is (fixtures), stamping only what is missing. */
  seed(set: string, row: Row): Row {
    const table = this.meta(set);
    const id = String(row[table.key] ?? randomUUID()).toLowerCase();
    const now = this.now().toISOString();
    const stamped: Row = { ...this.initialState(table), createdon: now, modifiedon: now, ...row, [table.key]: id, versionnumber: ++this.version };
    this.derive(table, stamped);
    this.sets.get(set)!.set(id, stamped);
    return stamped;
  }

  /** Creates a row from checked properties; `defaults` are what the server fills in (owner, currency). */
  create(set: string, properties: Row, callerId: string, defaults: Row = {}): Row {
    const table = this.meta(set);
    const id = String(properties[table.key] ?? randomUUID()).toLowerCase();
    if (!guid.test(id)) throw new DataverseError(400, "0x80040203", `Invalid GUID for ${table.key}: '${id}'.`);
    if (this.sets.get(set)!.has(id)) throw new DataverseError(412, "0x80040237", "A record with matching key values already exists.");
    const now = this.now().toISOString();
    const row: Row = { ...this.initialState(table), ...defaults, ...withoutUndefined(properties), [table.key]: id, createdon: now, _createdby_value: callerId };
    this.stamp(table, row, callerId);
    this.sets.get(set)!.set(id, row);
    return row;
  }

  update(set: string, id: string, properties: Row, callerId: string): Row {
    const table = this.meta(set);
    const existing = this.require(set, id);
    const { [table.key]: _key, ...changes } = withoutUndefined(properties);
    const row: Row = { ...existing, ...changes };
    this.stamp(table, row, callerId);
    this.sets.get(set)!.set(id.toLowerCase(), row);
    return row;
  }

  delete(set: string, id: string): void {
    this.require(set, id);
    this.sets.get(set)!.delete(id.toLowerCase());
    if (!this.deleted.has(set)) this.deleted.set(set, new Map());
    this.deleted.get(set)!.set(id.toLowerCase(), ++this.version);
  }

  /** Rows whose alternate-key columns have these values. */
  findByKey(set: string, values: Row): Row | undefined {
    return this.rows(set).find((row) => Object.entries(values).every(([name, value]) => String(row[name] ?? "").toLowerCase() === String(value).toLowerCase()));
  }

  /** The newest version stamped on any row (change tracking tokens name a point in this sequence). */
  get currentVersion(): number {
    return this.version;
  }

  etag(row: Row): string {
    return `W/"${row.versionnumber}"`;
  }

  /** For change sets and bulk messages: all or nothing. */
  snapshot(): { sets: Map<string, Map<string, Row>>; deleted: Map<string, Map<string, number>>; version: number } {
    return {
      sets: new Map([...this.sets].map(([set, rows]) => [set, new Map(rows)])),
      deleted: new Map([...this.deleted].map(([set, ids]) => [set, new Map(ids)])),
      version: this.version,
    };
  }

  /** Rolls back rows and deletions alike: a rolled-back delete is not reported by change tracking. */
  restore(snapshot: { sets: Map<string, Map<string, Row>>; deleted: Map<string, Map<string, number>>; version: number }): void {
    this.sets = snapshot.sets;
    this.deleted.clear();
    for (const [set, ids] of snapshot.deleted) this.deleted.set(set, ids);
  }

  /** Dataverse creates rows Active: statecode 0 and the default status of that state. */
  private initialState(table: TableMetadata): Row {
    const initial: Row = { ...table.defaults };
    if (attributeOf(table, "statecode")) initial.statecode = 0;
    const status = attributeOf(table, "statuscode")?.options?.find((option) => (option.state ?? 0) === 0);
    if (status) initial.statuscode = status.value;
    return initial;
  }

  private stamp(table: TableMetadata, row: Row, callerId: string): void {
    row.modifiedon = this.now().toISOString();
    row._modifiedby_value = callerId;
    row.versionnumber = ++this.version;
    this.derive(table, row);
  }

  /** Computed columns: fullname from first and last name (the organization's default full-name format). */
  private derive(table: TableMetadata, row: Row): void {
    if ((table.logicalName === "contact" || table.logicalName === "systemuser") && (row.firstname !== undefined || row.lastname !== undefined)) {
      row.fullname = [row.firstname, row.lastname].filter((part) => typeof part === "string" && part !== "").join(" ") || null;
    }
  }
}

function withoutUndefined(row: Row): Row {
  return Object.fromEntries(Object.entries(row).filter(([, value]) => value !== undefined));
}
