import type { TokenCredential } from "@azure/identity";
import type { SecretClient, SecretClientOptions } from "@azure/keyvault-secrets";
import { type SecretStore, SecretNotFoundError } from "./secret-store";
import type { SecretRef } from "../model/connection-setup";

/**
 * Secrets in Azure Key Vault. Updates add versions with setSecret: deleting and re-creating a name
 * collides with soft delete. A name that is soft-deleted (a removed setup set up again) is recovered
 * first, because purge protection may forbid purging it.
 */
export class KeyVaultSecretStore implements SecretStore {
  readonly description = { kind: "key-vault", encrypted: true } as const;
  private readonly client: SecretClient;

  constructor(init: { vaultUrl: string; credential: TokenCredential; clientOptions?: SecretClientOptions }) {
    // The SDK loads with the first Key Vault store, not at every cold start.
    const { SecretClient: Client } = require("@azure/keyvault-secrets") as typeof import("@azure/keyvault-secrets");
    this.client = new Client(init.vaultUrl, init.credential, init.clientOptions);
  }

  async set(name: string, value: string): Promise<SecretRef> {
    try {
      return toRef(await this.client.setSecret(name, value, { contentType: "text/plain" }));
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      const poller = await this.client.beginRecoverDeletedSecret(name, { intervalInMs: 250 });
      await poller.pollUntilDone();
      return toRef(await this.client.setSecret(name, value, { contentType: "text/plain" }));
    }
  }

  async get(ref: SecretRef): Promise<string> {
    try {
      const secret = await this.client.getSecret(ref.name, { version: ref.version });
      if (secret.value === undefined) throw new SecretNotFoundError(ref.name);
      return secret.value;
    } catch (error) {
      if (statusOf(error) === 404) throw new SecretNotFoundError(ref.name);
      throw error;
    }
  }

  async discard(ref: SecretRef): Promise<void> {
    await this.client.updateSecretProperties(ref.name, ref.version, { enabled: false });
  }

  async remove(name: string): Promise<void> {
    try {
      // Starting the delete is enough: the vault finishes it; waiting for the poller adds nothing.
      await this.client.beginDeleteSecret(name);
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }
}

function toRef(secret: { name: string; properties: { version?: string } }): SecretRef {
  if (!secret.properties.version) throw new Error(`Key Vault returned no version for "${secret.name}"`);
  return { name: secret.name, version: secret.properties.version };
}

function statusOf(error: unknown): number | undefined {
  return typeof error === "object" && error !== null && "statusCode" in error ? Number(error.statusCode) : undefined;
}
