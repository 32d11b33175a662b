import type { SecretRef } from "../model/connection-setup";

export interface SecretStoreDescription {
  kind: "key-vault" | "local";
  /** Whether secret values are encrypted at rest (Key Vault always; the local store with AES-256-GCM). */
  encrypted: boolean;
}

export interface SecretStore {
  readonly description: SecretStoreDescription;
  /** Writes a new version and returns its reference. */
  set(name: string, value: string): Promise<SecretRef>;
  /** The value of exactly that version; throws SecretNotFoundError when it is gone. */
  get(ref: SecretRef): Promise<string>;
  /** Removes the secret with all its versions; removing a missing secret is not an error. */
  remove(name: string): Promise<void>;
  /**
   * Takes back one version written for a save that then lost (a stale If-Match): it must not linger as a
   * usable copy. Key Vault cannot delete one version, so it is disabled; the local store deletes it.
   */
  discard(ref: SecretRef): Promise<void>;
}

export class SecretNotFoundError extends Error {
  constructor(name: string) {
    super(`The secret "${name}" was not found in the secret store.`);
    this.name = "SecretNotFoundError";
  }
}

export type SecretKind = "password" | "client-secret" | "certificate";

/**
 * Key Vault secret names allow [0-9a-zA-Z-] up to 127 characters; a company slug is [a-z0-9-]{1,63},
 * so `crm-<company>-<kind>` is always valid and never collides between companies or kinds.
 */
export function secretName(company: string, kind: SecretKind): string {
  const name = `crm-${company}-${kind}`;
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) throw new Error(`"${company}" cannot form a valid secret name`);
  return name;
}
