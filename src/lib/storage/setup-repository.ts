import * as z from "zod";
import { authenticationTypes } from "../model/authentication-type";
import type { ConnectionSetup } from "../model/connection-setup";
import type { SecretRef } from "../model/connection-setup";
import { type TableStorage, getRow, storageStatus } from "./table-storage";

const tableName = "connectionsetups";
const rowKey = "setup";

export interface Versioned<T> {
  value: T;
  etag: string;
}

/** A write lost a race: the row changed (stale ETag) or appeared since it was read. */
export class ConcurrencyError extends Error {
  constructor(message = "The connection setup was changed by someone else. Read it again and retry.") {
    super(message);
    this.name = "ConcurrencyError";
  }
}

const optionalText = z.string().optional();
/** The row as Table Storage holds it: flat properties, secrets only as name + version. */
const setupRow = z.object({
  partitionKey: z.string(),
  serverAddress: z.string(),
  authenticationType: z.enum(authenticationTypes),
  userName: optionalText,
  clientId: optionalText,
  tenantId: optionalText,
  redirectUri: optionalText,
  homeRealmUri: optionalText,
  certificateThumbprint: optionalText,
  proxyVersion: z.number(),
  passwordSecretName: optionalText,
  passwordSecretVersion: optionalText,
  clientSecretSecretName: optionalText,
  clientSecretSecretVersion: optionalText,
  certificateSecretName: optionalText,
  certificateSecretVersion: optionalText,
  isEnabled: z.boolean(),
  disableReason: optionalText,
  crmVersion: optionalText,
  crmBaseCurrencyCode: optionalText,
  connectionUserId: optionalText,
  crmCompanyId: optionalText,
  integrationSolutionImported: z.boolean(),
  erpWebUrl: optionalText,
  connectionUserIsIntegrationUser: z.boolean(),
  salesOrderIntegrationEnabled: z.boolean(),
  // Rows written before the setting existed read as off.
  autoCreateSalesOrders: z.boolean().default(false),
  usersMustMapToCrmUsers: z.boolean(),
  updatedAt: z.string(),
});

const secretKinds = ["password", "clientSecret", "certificate"] as const;

export class SetupRepository {
  constructor(private readonly tables: TableStorage) {}

  /** Every company with a setup: a one-column scan, for pickers. */
  async list(): Promise<{ company: string; serverAddress: string; isEnabled: boolean }[]> {
    const table = await this.tables.table(tableName);
    const companies: { company: string; serverAddress: string; isEnabled: boolean }[] = [];
    for await (const row of table.listEntities<{ serverAddress: string; isEnabled: boolean }>({
      queryOptions: { select: ["PartitionKey", "serverAddress", "isEnabled"] },
    })) {
      companies.push({ company: String(row.partitionKey), serverAddress: row.serverAddress, isEnabled: row.isEnabled });
    }
    return companies.sort((a, b) => a.company.localeCompare(b.company));
  }

  async get(company: string): Promise<Versioned<ConnectionSetup> | undefined> {
    const row = await getRow<Record<string, unknown>>(await this.tables.table(tableName), company, rowKey);
    return row && { value: fromRow(setupRow.parse(row)), etag: row.etag };
  }

  /**
   * Inserts when `etag` is undefined (fails if the row exists), else replaces only if the row still has
   * that ETag. Returns the new ETag.
   */
  async save(setup: ConnectionSetup, etag: string | undefined): Promise<string> {
    const table = await this.tables.table(tableName);
    const entity = { partitionKey: setup.company, rowKey, ...toRow(setup) };
    try {
      const response = etag === undefined ? await table.createEntity(entity) : await table.updateEntity(entity, "Replace", { etag });
      if (!response.etag) throw new Error("Table Storage returned no ETag");
      return response.etag;
    } catch (error) {
      const status = storageStatus(error);
      if (status === 409 || status === 412 || (status === 404 && etag !== undefined)) throw new ConcurrencyError();
      throw error;
    }
  }

  async delete(company: string, etag: string): Promise<void> {
    const table = await this.tables.table(tableName);
    try {
      await table.deleteEntity(company, rowKey, { etag });
    } catch (error) {
      const status = storageStatus(error);
      if (status === 412 || status === 404) throw new ConcurrencyError();
      throw error;
    }
  }
}

function toRow(setup: ConnectionSetup): Record<string, string | number | boolean | undefined> {
  const { company: _company, secrets, ...fields } = setup;
  const row: Record<string, string | number | boolean | undefined> = { ...fields };
  for (const kind of secretKinds) {
    row[`${kind}SecretName`] = secrets[kind]?.name;
    row[`${kind}SecretVersion`] = secrets[kind]?.version;
  }
  // Table Storage cannot hold undefined; leaving the property out clears it on Replace.
  for (const key of Object.keys(row)) if (row[key] === undefined) delete row[key];
  return row;
}

function fromRow(row: z.infer<typeof setupRow>): ConnectionSetup {
  const secrets: ConnectionSetup["secrets"] = {};
  for (const kind of secretKinds) {
    const name = row[`${kind}SecretName`];
    const version = row[`${kind}SecretVersion`];
    if (name && version) secrets[kind] = { name, version } satisfies SecretRef;
  }
  const {
    partitionKey,
    passwordSecretName: _a,
    passwordSecretVersion: _b,
    clientSecretSecretName: _c,
    clientSecretSecretVersion: _d,
    certificateSecretName: _e,
    certificateSecretVersion: _f,
    ...fields
  } = row;
  return { ...stripUndefined(fields), company: partitionKey, secrets };
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as T;
}
