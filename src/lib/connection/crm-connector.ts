import type { Config } from "../config";
import { DataverseClient } from "../dataverse/dataverse-client";
import { type HttpsTransport, TransportError } from "../dataverse/https-transport";
import { type OutboundGuard, OutboundGuardError } from "../dataverse/outbound-guard";
import type { SignInCredentials, TokenProvider } from "../dataverse/token-provider";
import { credentialKind } from "../model/authentication-type";
import type { ConnectionSetup } from "../model/connection-setup";
import type { SecretStore } from "../secrets/secret-store";
import { connectionMessages } from "./messages";

/** The credentials the setup still lacks, as the message the ERP shows; undefined when complete. */
export function missingCredentials(setup: ConnectionSetup): string | undefined {
  const kind = credentialKind[setup.authenticationType];
  if (kind === "user") return setup.userName && setup.secrets.password ? undefined : connectionMessages.userCredentialsRequired;
  if (!setup.clientId) return connectionMessages.applicationCredentialsRequired;
  const secret = kind === "clientSecret" ? setup.secrets.clientSecret : setup.secrets.certificate;
  return secret ? undefined : connectionMessages.applicationCredentialsRequired;
}

/** Opens signed-in Dataverse clients for a stored setup: reads its secrets, gets tokens, applies limits. */
export class CrmConnector {
  constructor(
    private readonly init: {
      secrets: SecretStore;
      tokens: TokenProvider;
      transport: HttpsTransport;
      guard: OutboundGuard;
      config: Pick<Config, "SYNC_MAX_PARALLEL">;
    },
  ) {}

  async credentials(setup: ConnectionSetup): Promise<SignInCredentials> {
    const { secrets } = this.init;
    const [password, clientSecret, certificatePem] = await Promise.all([
      setup.secrets.password && secrets.get(setup.secrets.password),
      setup.secrets.clientSecret && secrets.get(setup.secrets.clientSecret),
      setup.secrets.certificate && secrets.get(setup.secrets.certificate),
    ]);
    return {
      authenticationType: setup.authenticationType,
      serverAddress: setup.serverAddress,
      ...(setup.tenantId && { tenantId: setup.tenantId }),
      ...(setup.userName && { userName: setup.userName }),
      ...(setup.clientId && { clientId: setup.clientId }),
      ...(password && { password }),
      ...(clientSecret && { clientSecret }),
      ...(certificatePem && { certificatePem }),
    };
  }

  async client(setup: ConnectionSetup, options: { maxParallel?: number } = {}): Promise<DataverseClient> {
    // Refuse a disallowed Sales URL before anything, sign-in included, is sent anywhere.
    try {
      this.init.guard.check(setup.serverAddress);
    } catch (error) {
      if (error instanceof OutboundGuardError) throw new TransportError("outbound-guard", error.message);
      throw error;
    }
    const credentials = await this.credentials(setup);
    return new DataverseClient({
      serverAddress: setup.serverAddress,
      transport: this.init.transport,
      getToken: () => this.init.tokens.token(setup.company, credentials),
      maxParallel: options.maxParallel ?? this.init.config.SYNC_MAX_PARALLEL,
    });
  }

  /** Forget cached tokens, e.g. after the setup changed or the connection was disabled. */
  forget(company: string): void {
    this.init.tokens.forget(company);
  }
}
