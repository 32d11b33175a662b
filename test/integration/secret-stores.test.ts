import { randomBytes } from "node:crypto";
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/lib/config";
import { KeyVaultSecretStore } from "../../src/lib/secrets/key-vault-secret-store";
import { LocalSecretStore } from "../../src/lib/secrets/local-secret-store";
import { SecretNotFoundError, secretName } from "../../src/lib/secrets/secret-store";
import { TableStorage } from "../../src/lib/storage/table-storage";
import { startKeyVaultStandIn } from "../support/key-vault-stand-in";
import { uniqueCompany } from "../support/names";

describe("Key Vault secret store (real SDK against an HTTPS stand-in)", () => {
  let vault: Awaited<ReturnType<typeof startKeyVaultStandIn>>;
  let store: KeyVaultSecretStore;
  const tokenRequests: { scopes: string[]; tenantId?: string }[] = [];

  beforeAll(async () => {
    vault = await startKeyVaultStandIn();
    const credential: TokenCredential = {
      async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
        tokenRequests.push({ scopes: [scopes].flat(), tenantId: options?.tenantId });
        return { token: vault.token, expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    store = new KeyVaultSecretStore({
      vaultUrl: vault.url,
      credential,
      clientOptions: { disableChallengeResourceVerification: true, tlsOptions: { ca: vault.ca }, retryOptions: { maxRetries: 0 } },
    });
  });
  afterAll(() => vault.close());

  it("answers the 401 challenge with a token for the vault's tenant and scope", async () => {
    await store.set(secretName(uniqueCompany(), "password"), "v1");
    expect(vault.requests[0]).toMatchObject({ method: "PUT", authorized: false });
    expect(tokenRequests[0]).toEqual({ scopes: ["https://vault.azure.net/.default"], tenantId: vault.tenantId });
    expect(vault.requests.at(-1)).toMatchObject({ method: "PUT", authorized: true });
  });

  it("writes a new version on every set and reads exactly the referenced version", async () => {
    const name = secretName(uniqueCompany(), "client-secret");
    const first = await store.set(name, "first");
    const second = await store.set(name, "second");
    expect(first.version).not.toBe(second.version);
    expect(vault.versionsOf(name)).toEqual([first.version, second.version]);
    expect(await store.get(first)).toBe("first");
    expect(await store.get(second)).toBe("second");
  });

  it("discards one version by disabling it: it can no longer be read, the others still can", async () => {
    const name = secretName(uniqueCompany(), "password");
    const kept = await store.set(name, "kept");
    const lost = await store.set(name, "lost");
    await store.discard(lost);
    await expect(store.get(lost)).rejects.toThrow();
    expect(await store.get(kept)).toBe("kept");
  });

  it("reports a missing secret as SecretNotFoundError", async () => {
    await expect(store.get({ name: "crm-nobody-password", version: "0".repeat(32) })).rejects.toBeInstanceOf(SecretNotFoundError);
  });

  it("removes a secret (soft delete) and recovers the name when the company is set up again", async () => {
    const name = secretName(uniqueCompany(), "password");
    const old = await store.set(name, "old");
    await store.remove(name);
    expect(vault.isSoftDeleted(name)).toBe(true);
    await expect(store.get(old)).rejects.toBeInstanceOf(SecretNotFoundError);

    const renewed = await store.set(name, "new");
    expect(vault.isSoftDeleted(name)).toBe(false);
    expect(await store.get(renewed)).toBe("new");
    expect(vault.requests.some((request) => request.method === "POST" && request.path.endsWith(`/deletedsecrets/${name}/recover`))).toBe(true);
  });

  it("treats removing a missing secret as done", async () => {
    await expect(store.remove("crm-never-existed-password")).resolves.toBeUndefined();
  });
});

describe("local secret store", () => {
  const key = randomBytes(32);
  let tables: TableStorage;
  beforeAll(() => {
    tables = new TableStorage({ connectionString: loadConfig().AzureWebJobsStorage! });
  });

  it("keeps only ciphertext in its table and decrypts each version", async () => {
    const store = new LocalSecretStore(tables, key, false);
    const name = secretName(uniqueCompany(), "password");
    const first = await store.set(name, "plain-text-password-1");
    const second = await store.set(name, "plain-text-password-2");
    expect(await store.get(first)).toBe("plain-text-password-1");
    expect(await store.get(second)).toBe("plain-text-password-2");
    const rows = [];
    for await (const row of (await tables.table("localsecrets")).listEntities({ queryOptions: { filter: `PartitionKey eq '${name}'` } })) rows.push(row);
    expect(rows).toHaveLength(2);
    expect(JSON.stringify(rows)).not.toContain("plain-text-password");
  });

  it("cannot read secrets with another key or from a row moved to another name", async () => {
    const name = secretName(uniqueCompany(), "password");
    const ref = await new LocalSecretStore(tables, key, false).set(name, "x");
    await expect(new LocalSecretStore(tables, randomBytes(32), false).get(ref)).rejects.toThrow();
    const table = await tables.table("localsecrets");
    const { iv, tag, ciphertext } = await table.getEntity<{ iv: string; tag: string; ciphertext: string }>(ref.name, ref.version);
    const other = secretName(uniqueCompany(), "password");
    await table.createEntity({ partitionKey: other, rowKey: ref.version, iv, tag, ciphertext });
    await expect(new LocalSecretStore(tables, key, false).get({ name: other, version: ref.version })).rejects.toThrow();
  });

  it("removes every version", async () => {
    const store = new LocalSecretStore(tables, key, false);
    const name = secretName(uniqueCompany(), "certificate");
    const refs = [await store.set(name, "a"), await store.set(name, "b")];
    await store.remove(name);
    for (const ref of refs) await expect(store.get(ref)).rejects.toBeInstanceOf(SecretNotFoundError);
  });

  it("refuses to run in Azure", () => {
    expect(() => new LocalSecretStore(tables, key, true)).toThrow(/local runs only/);
  });
});
