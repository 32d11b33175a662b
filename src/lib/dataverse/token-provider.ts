import { createHash, X509Certificate } from "node:crypto";
import type * as Msal from "@azure/msal-node";
import type { AccountInfo, Configuration } from "@azure/msal-node";
import type { AuthenticationType } from "../model/authentication-type";
import { type HttpsTransport, TransportError } from "./https-transport";
import { MsalNetwork } from "./msal-network";

/**
 * The app id XRM tooling uses for OAuth/Office365 sign-in when none is configured (Microsoft's
 * documented sample registration for Dataverse); admins can set their own client id instead.
 */
export const defaultPublicClientId = "51f81489-12ee-4a9e-aaae-a2591f45987d";

export interface SignInCredentials {
  authenticationType: AuthenticationType;
  serverAddress: string;
  tenantId?: string;
  userName?: string;
  password?: string;
  clientId?: string;
  clientSecret?: string;
  certificatePem?: string;
}

/** Sign-in failed: `reason` is what Entra ID said, without trace ids; `kind` says where it failed. */
export class SignInError extends Error {
  constructor(
    readonly kind: "sign-in" | "unsupported" | TransportError["kind"],
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "SignInError";
  }
}

interface CachedClient {
  fingerprint: string;
  acquire: () => Promise<string>;
}

/**
 * Access tokens for Dataverse with MSAL Node: user + password (Office365/OAuth), client secret, or
 * certificate. One MSAL application per company (so its in-memory token cache is per company), rebuilt
 * when the credentials change.
 */
export class TokenProvider {
  private readonly clients = new Map<string, CachedClient>();
  private readonly network: MsalNetwork;

  constructor(
    private readonly init: {
      authorityHost: string;
      transport: HttpsTransport;
      /** Finds the tenant from Dataverse's 401 challenge when the setup names none. */
      discoverTenant: (serverAddress: string) => Promise<string | undefined>;
    },
  ) {
    this.network = new MsalNetwork(init.transport);
  }

  async token(company: string, credentials: SignInCredentials): Promise<string> {
    const fingerprint = fingerprintOf(credentials);
    let client = this.clients.get(company);
    if (!client || client.fingerprint !== fingerprint) {
      client = { fingerprint, acquire: await this.createClient(credentials) };
      this.clients.set(company, client);
    }
    try {
      return await client.acquire();
    } catch (error) {
      throw toSignInError(error);
    }
  }

  forget(company: string): void {
    this.clients.delete(company);
  }

  private async createClient(credentials: SignInCredentials): Promise<() => Promise<string>> {
    const { ConfidentialClientApplication, LogLevel, PublicClientApplication } = msal();
    const tenant = credentials.tenantId ?? (await this.discoverTenantOrFail(credentials.serverAddress));
    const authority = `${this.init.authorityHost}/${tenant}`;
    const scopes = [`${credentials.serverAddress}/.default`];
    const base: Pick<Configuration, "system"> = {
      system: { networkClient: this.network, loggerOptions: { logLevel: LogLevel.Error, piiLoggingEnabled: false, loggerCallback: () => {} } },
    };
    const knownAuthorities = [new URL(this.init.authorityHost).host];

    switch (credentials.authenticationType) {
      case "Office365":
      case "OAuth": {
        const { userName, password } = credentials;
        if (!userName || !password) throw new SignInError("sign-in", "A user name and password are required to sign in.");
        const app = new PublicClientApplication({ ...base, auth: { clientId: credentials.clientId ?? defaultPublicClientId, authority, knownAuthorities } });
        let account: AccountInfo | null = null;
        return async () => {
          if (account) {
            const silent = await app.acquireTokenSilent({ account, scopes }).catch(() => null);
            if (silent?.accessToken) return silent.accessToken;
          }
          const result = await app.acquireTokenByUsernamePassword({ scopes, username: userName, password });
          if (!result?.accessToken) throw new SignInError("sign-in", "Entra ID returned no access token.");
          account = result.account;
          return result.accessToken;
        };
      }
      case "ClientSecret":
      case "Certificate": {
        const { clientId } = credentials;
        if (!clientId) throw new SignInError("sign-in", "A client ID is required to sign in as an application.");
        const auth: Configuration["auth"] = { clientId, authority, knownAuthorities };
        if (credentials.authenticationType === "ClientSecret") {
          if (!credentials.clientSecret) throw new SignInError("sign-in", "A client secret is required to sign in with ClientSecret.");
          auth.clientSecret = credentials.clientSecret;
        } else {
          if (!credentials.certificatePem) throw new SignInError("sign-in", "A certificate is required to sign in with Certificate.");
          auth.clientCertificate = certificateCredential(credentials.certificatePem);
        }
        const app = new ConfidentialClientApplication({ ...base, auth });
        return async () => {
          // MSAL answers from its cache until the token is close to expiry.
          const result = await app.acquireTokenByClientCredential({ scopes });
          if (!result?.accessToken) throw new SignInError("sign-in", "Entra ID returned no access token.");
          return result.accessToken;
        };
      }
      case "AD":
      case "IFD":
        throw new SignInError(
          "unsupported",
          `${credentials.authenticationType} authentication signs in to an on-premises server with Windows or AD FS credentials, which this cloud ` +
            `service cannot use. Use Office365, OAuth, ClientSecret or Certificate.`,
        );
    }
  }

  private async discoverTenantOrFail(serverAddress: string): Promise<string> {
    const tenant = await this.init.discoverTenant(serverAddress);
    if (!tenant) throw new SignInError("sign-in", "The tenant could not be found from the organization's sign-in challenge; enter the tenant ID.");
    return tenant;
  }
}

/** MSAL loads on the first sign-in, not at cold start. */
function msal(): typeof Msal {
  return require("@azure/msal-node") as typeof Msal;
}

function certificateCredential(pem: string): { thumbprintSha256: string; privateKey: string; x5c: string } {
  const certificate = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0];
  const privateKey = pem.match(/-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/)?.[0];
  if (!certificate || !privateKey) throw new SignInError("sign-in", "The stored certificate has no certificate or private key.");
  const thumbprintSha256 = createHash("sha256").update(new X509Certificate(certificate).raw).digest("hex");
  return { thumbprintSha256, privateKey, x5c: certificate };
}

/** What identifies the credentials, without holding them: a hash, kept only in memory. */
function fingerprintOf(credentials: SignInCredentials): string {
  return createHash("sha256").update(JSON.stringify(credentials)).digest("hex");
}

function toSignInError(error: unknown): Error {
  if (error instanceof SignInError) return error;
  if (error instanceof TransportError) return new SignInError(error.kind, error.message, error.code);
  const cause = findTransportError(error);
  if (cause) return new SignInError(cause.kind, cause.message, cause.code);
  if (error instanceof msal().AuthError) {
    // "Error(s): 50126 - ... Description: AADSTS50126: Error validating credentials ... Trace ID: ..."
    // -> keep the AADSTS code and its sentence.
    const description =
      /AADSTS\d+:[\s\S]*?(?= Trace ID:|\r?\n|$)/.exec(error.errorMessage)?.[0].trim() ?? `${error.errorCode}: ${error.errorMessage}`.slice(0, 300);
    return new SignInError("sign-in", description, error.errorCode);
  }
  return error instanceof Error ? error : new Error(String(error));
}

function findTransportError(error: unknown, depth = 0): TransportError | undefined {
  if (depth > 4 || typeof error !== "object" || error === null) return undefined;
  if (error instanceof TransportError) return error;
  for (const key of ["cause", "error", "innerError"]) {
    const found = findTransportError((error as Record<string, unknown>)[key], depth + 1);
    if (found) return found;
  }
  return undefined;
}
