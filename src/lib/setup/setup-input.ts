import { X509Certificate, createPrivateKey } from "node:crypto";
import * as z from "zod";
import type { FieldError } from "../errors";
import type { SetupFields } from "../model/connection-setup";
import { authenticationTypes, defaultAuthenticationType, parseAuthenticationType, usesDomainUserName } from "../model/authentication-type";
import { ConnectionStringError, type ParsedConnectionString, clientSecretPlaceholder, parseConnectionString, passwordPlaceholder } from "./connection-string";
import { setupMessages } from "./messages";
import { normalizeServerAddress } from "./server-address";
import { userNameProblem } from "./user-name";

const guid = z
  .string()
  .trim()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "must be a GUID");
const tenant = z
  .string()
  .trim()
  .regex(/^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9-]+(\.[a-z0-9-]+)+)$/i, "must be a tenant GUID or domain name");
const absoluteUrl = z.url({ protocol: /^https?$/, error: "must be an absolute http(s) URL" });
// Redirect URIs of app registrations may use any scheme: Microsoft's XRM tooling sample uses app://<guid>.
const redirectUri = z
  .string()
  .trim()
  .regex(/^[a-z][a-z0-9+.-]*:\/\/[^\s;]+$/i, "must be an absolute URI, e.g. app://58145B91-0C36-4500-8554-080854F2AC97 or http://localhost");
const secretValue = z.string().min(1, "must not be empty").max(8192, "must be at most 8192 characters");

/** PUT /connection body (API.md). Either the fields or `connectionString`; secrets may accompany either. */
export const connectionSetupInput = z.strictObject({
  serverAddress: z.string().max(2048).optional(),
  authenticationType: z
    .string()
    .transform((value, context) => {
      const type = parseAuthenticationType(value);
      if (!type) context.addIssue({ code: "custom", message: `must be one of ${authenticationTypes.join(", ")}` });
      return type ?? z.NEVER;
    })
    .optional(),
  userName: z.string().trim().max(250).optional(),
  password: secretValue.optional(),
  clientId: guid.optional(),
  clientSecret: secretValue.optional(),
  certificatePem: z.string().max(65536).optional(),
  tenantId: tenant.optional(),
  redirectUri: redirectUri.optional(),
  homeRealmUri: absoluteUrl.optional(),
  proxyVersion: z.int().min(9, "must be 9 or later").max(99).optional(),
  connectionString: z.string().min(1).max(8192).optional(),
});
export type ConnectionSetupInput = z.infer<typeof connectionSetupInput>;

/** Secrets supplied with this request; only these are written. */
export interface SuppliedSecrets {
  password?: string;
  clientSecret?: string;
  certificatePem?: string;
}

export interface Notice {
  code: string;
  message: string;
}

export type ResolvedSetup = { ok: true; fields: SetupFields; secrets: SuppliedSecrets; notices: Notice[] } | { ok: false; errors: FieldError[] };

/** Which body field each connection-string key stands for, to refuse giving one value both ways. */
const fieldOfKey = {
  url: "serverAddress",
  userName: "userName",
  authType: "authenticationType",
  clientId: "clientId",
  redirectUri: "redirectUri",
  homeRealmUri: "homeRealmUri",
  tenantId: "tenantId",
  proxyVersion: "proxyVersion",
} as const;

/**
 * Turns a validated body into the setup to store: merges a supplied connection string, normalizes the
 * URL, defaults the authentication type and applies the per-type rules. Pure: no I/O.
 */
export function resolveSetupInput(input: ConnectionSetupInput): ResolvedSetup {
  const errors: FieldError[] = [];
  const notices: Notice[] = [];
  const merged = { ...input };
  const secrets: SuppliedSecrets = {};

  let parsed: ParsedConnectionString = {};
  if (input.connectionString !== undefined) {
    try {
      parsed = parseConnectionString(input.connectionString);
    } catch (error) {
      if (!(error instanceof ConnectionStringError)) throw error;
      return { ok: false, errors: [{ path: "connectionString", message: error.message }] };
    }
    mergeConnectionString(parsed, merged, secrets, errors);
  }
  if (input.password !== undefined) secrets.password ??= input.password;
  if (input.clientSecret !== undefined) secrets.clientSecret ??= input.clientSecret;

  const address = merged.serverAddress === undefined ? undefined : normalizeServerAddress(merged.serverAddress);
  if (!address) errors.push({ path: "serverAddress", message: "is required (the Dynamics 365 for Sales URL)" });
  else if (!address.ok) errors.push({ path: "serverAddress", message: address.message });
  else if (address.changed) {
    notices.push({ code: "server-address-normalized", message: setupMessages.urlReplaced(merged.serverAddress!.trim(), address.serverAddress) });
  }
  if (errors.length > 0 || !address?.ok) return { ok: false, errors };

  const authenticationType = merged.authenticationType ?? defaultAuthenticationType(address.serverAddress);
  let userName = merged.userName === "" ? undefined : merged.userName;
  // XRM tooling writes AD and IFD users as "Domain=CONTOSO; Username=integration": stored as CONTOSO\integration.
  if (userName && parsed.domain && usesDomainUserName(authenticationType) && !/[\\@]/.test(userName)) userName = `${parsed.domain}\\${userName}`;
  if (userName !== undefined) {
    const problem = userNameProblem(authenticationType, userName);
    if (problem) errors.push({ path: parsed.userName !== undefined ? "connectionString" : "userName", message: problem });
  }

  let certificateThumbprint = parsed.thumbprint?.replace(/[\s:]/g, "").toUpperCase();
  if (certificateThumbprint !== undefined && !/^[0-9A-F]{40}$/.test(certificateThumbprint)) {
    errors.push({ path: "connectionString", message: "Thumbprint must be 40 hexadecimal characters (SHA-1)." });
  }
  if (input.certificatePem !== undefined) {
    const certificate = readCertificate(input.certificatePem);
    if ("message" in certificate) errors.push({ path: "certificatePem", message: certificate.message });
    else {
      if (certificateThumbprint !== undefined && certificateThumbprint !== certificate.thumbprint) {
        errors.push({ path: "certificatePem", message: "does not match the Thumbprint in connectionString" });
      }
      certificateThumbprint = certificate.thumbprint;
      secrets.certificatePem = input.certificatePem;
    }
  }
  if (errors.length > 0) return { ok: false, errors };

  return {
    ok: true,
    notices,
    secrets,
    fields: {
      serverAddress: address.serverAddress,
      authenticationType,
      ...(userName !== undefined && { userName }),
      ...(merged.clientId !== undefined && { clientId: merged.clientId.toLowerCase() }),
      ...(merged.tenantId !== undefined && { tenantId: merged.tenantId.toLowerCase() }),
      ...(merged.redirectUri !== undefined && { redirectUri: merged.redirectUri }),
      ...(merged.homeRealmUri !== undefined && { homeRealmUri: merged.homeRealmUri }),
      ...(certificateThumbprint !== undefined && { certificateThumbprint }),
      proxyVersion: merged.proxyVersion ?? 9,
    },
  };
}

function mergeConnectionString(parsed: ParsedConnectionString, merged: ConnectionSetupInput, secrets: SuppliedSecrets, errors: FieldError[]): void {
  for (const [key, field] of Object.entries(fieldOfKey) as [keyof typeof fieldOfKey, (typeof fieldOfKey)[keyof typeof fieldOfKey]][]) {
    if (parsed[key] === undefined) continue;
    if (merged[field] !== undefined) {
      errors.push({ path: field, message: "is also given in connectionString; give it one way only" });
      continue;
    }
    const value = key === "authType" ? parsed.authTypeValue : parsed[key];
    const check = fieldChecks[field]?.safeParse(value);
    if (check && !check.success) {
      errors.push({ path: "connectionString", message: `${key}: ${check.error.issues[0]?.message ?? "is not valid"}` });
      continue;
    }
    Object.assign(merged, { [field]: check ? check.data : value });
  }
  takeSecret(parsed.password, passwordPlaceholder, "password", merged.password, secrets, errors);
  takeSecret(parsed.clientSecret, clientSecretPlaceholder, "clientSecret", merged.clientSecret, secrets, errors);
}

const fieldChecks: Partial<Record<keyof ConnectionSetupInput, z.ZodType>> = {
  clientId: guid,
  tenantId: tenant,
  redirectUri,
  homeRealmUri: absoluteUrl,
  proxyVersion: z.coerce.number().int().min(9).max(99),
};

/** A secret written into a supplied connection string is taken out of it and into the secret store. */
function takeSecret(
  value: string | undefined,
  placeholder: string,
  field: "password" | "clientSecret",
  alsoGiven: string | undefined,
  secrets: SuppliedSecrets,
  errors: FieldError[],
): void {
  if (value === undefined || value === "" || value.toUpperCase() === placeholder) return;
  if (alsoGiven !== undefined) {
    errors.push({ path: field, message: "is also given in connectionString; give it one way only" });
    return;
  }
  secrets[field] = value;
}

function readCertificate(pem: string): { thumbprint: string } | { message: string } {
  const certificateBlock = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
  const keyBlock = pem.match(/-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/);
  if (!certificateBlock || !keyBlock) {
    return { message: "must be PEM text holding the certificate and its unencrypted private key" };
  }
  try {
    const certificate = new X509Certificate(certificateBlock[0]);
    const privateKey = createPrivateKey(keyBlock[0]);
    if (!certificate.checkPrivateKey(privateKey)) return { message: "the private key does not belong to the certificate" };
    return { thumbprint: certificate.fingerprint.replace(/:/g, "").toUpperCase() };
  } catch {
    return { message: "must be PEM text holding the certificate and its unencrypted private key" };
  }
}
