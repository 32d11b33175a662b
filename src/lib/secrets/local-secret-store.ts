import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { TableStorage } from "../storage/table-storage";
import { storageStatus } from "../storage/table-storage";
import { type SecretStore, SecretNotFoundError } from "./secret-store";
import type { SecretRef } from "../model/connection-setup";

const tableName = "localsecrets";

/**
 * The fallback secret store for local runs: AES-256-GCM encrypted rows in their own table (one row per
 * version, the name and version bound in as additional data so rows can't be swapped). Never in Azure.
 */
export class LocalSecretStore implements SecretStore {
  readonly description = { kind: "local", encrypted: true } as const;

  constructor(
    private readonly tables: TableStorage,
    private readonly key: Buffer,
    runningInAzure: boolean,
  ) {
    if (runningInAzure) throw new Error("The local secret store is for local runs only; set KEY_VAULT_URL in Azure.");
    if (key.length !== 32) throw new Error("The local secret key must be 32 bytes (AES-256).");
  }

  async set(name: string, value: string): Promise<SecretRef> {
    const version = newVersion();
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(`${name}/${version}`));
    const ciphertext = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
    const table = await this.tables.table(tableName);
    await table.createEntity({
      partitionKey: name,
      rowKey: version,
      iv: iv.toString("base64"),
      tag: cipher.getAuthTag().toString("base64"),
      ciphertext: ciphertext.toString("base64"),
    });
    return { name, version };
  }

  async get(ref: SecretRef): Promise<string> {
    const table = await this.tables.table(tableName);
    let row: Record<string, unknown>;
    try {
      row = await table.getEntity(ref.name, ref.version);
    } catch (error) {
      if (storageStatus(error) === 404) throw new SecretNotFoundError(ref.name);
      throw error;
    }
    const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(String(row.iv), "base64"));
    decipher.setAAD(Buffer.from(`${ref.name}/${ref.version}`));
    decipher.setAuthTag(Buffer.from(String(row.tag), "base64"));
    return Buffer.concat([decipher.update(Buffer.from(String(row.ciphertext), "base64")), decipher.final()]).toString("utf8");
  }

  async discard(ref: SecretRef): Promise<void> {
    const table = await this.tables.table(tableName);
    await table.deleteEntity(ref.name, ref.version).catch((error: unknown) => {
      if (storageStatus(error) !== 404) throw error;
    });
  }

  async remove(name: string): Promise<void> {
    const table = await this.tables.table(tableName);
    const versions = table.listEntities({ queryOptions: { filter: `PartitionKey eq '${name.replace(/'/g, "''")}'`, select: ["RowKey"] } });
    for await (const row of versions) {
      await table.deleteEntity(name, String(row.rowKey)).catch((error: unknown) => {
        if (storageStatus(error) !== 404) throw error;
      });
    }
  }
}

/** Time-ordered, 32 hex characters like a Key Vault version. */
function newVersion(): string {
  return Date.now().toString(16).padStart(12, "0") + randomBytes(10).toString("hex");
}

/** LOCAL_SECRET_KEY, or a key generated once into a git-ignored file readable only by its owner. */
export function loadLocalSecretKey(configured: string | undefined, keyFile: string): Buffer {
  if (configured) return Buffer.from(configured, "base64");
  try {
    const stored = Buffer.from(readFileSync(keyFile, "utf8").trim(), "base64");
    if (stored.length !== 32) throw new Error(`${keyFile} does not hold a 32-byte base64 key; fix or remove it (secrets saved with it are lost).`);
    return stored;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const key = randomBytes(32);
  mkdirSync(dirname(keyFile), { recursive: true });
  writeFileSync(keyFile, key.toString("base64"), { mode: 0o600 });
  return key;
}
