import { type JSONWebKeySet, createLocalJWKSet, jwtVerify } from "jose";
import type { CallerPrincipal } from "./caller-principal";

/**
 * Validates an ERP user's Entra ID access token (Authorization: Bearer) when App Service authentication is
 * not in front of the app: issuer and signing keys of the configured tenant, the configured audience, and the
 * token's lifetime, with jose. The tenant's keys are fetched through the given function (the project's HTTPS
 * transport, so the outbound rules apply) and kept for an hour.
 */
export class CallerTokenVerifier {
  private keys: { jwks: ReturnType<typeof createLocalJWKSet>; fetchedAt: number } | undefined;

  constructor(
    private readonly init: {
      authorityHost: string;
      tenantId: string;
      audience: string;
      fetchKeys: (url: string) => Promise<JSONWebKeySet>;
      now?: () => number;
    },
  ) {}

  /**
   * The tenant's issuers in both token versions (learn.microsoft.com/entra/identity-platform/access-token-claims-reference):
   * v2.0 tokens come from `<authority>/<tenant>/v2.0`; v1.0 tokens, which an app registration made with
   * `az ad app create` receives (accessTokenAcceptedVersion null), from `https://sts.windows.net/<tenant>/`.
   */
  get issuers(): string[] {
    return [`${this.init.authorityHost}/${this.init.tenantId}/v2.0`, `https://sts.windows.net/${this.init.tenantId}/`];
  }

  /** The audience as either form names it: v1 tokens carry the identifier URI (api://<client id>), v2 the client id. */
  get audiences(): string[] {
    const audience = this.init.audience;
    const clientId = /^api:\/\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/i.exec(audience)?.[1];
    if (clientId) return [audience, clientId];
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(audience)) return [audience, `api://${audience}`];
    return [audience];
  }

  /** The caller, or undefined when there is no token; a token that fails validation throws (401). */
  async verify(authorization: string | null): Promise<CallerPrincipal | undefined> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    if (!token) return undefined;
    const { payload } = await jwtVerify(token, await this.keySet(), {
      issuer: this.issuers,
      audience: this.audiences,
      algorithms: ["RS256"],
      clockTolerance: 60,
    });
    // Each version has its own issuer: a token naming the other one is not one the tenant issued.
    const [v2Issuer, v1Issuer] = this.issuers;
    if (payload.iss !== (payload.ver === "1.0" ? v1Issuer : v2Issuer)) throw new Error("The token's issuer does not match its version.");
    const email = [payload.preferred_username, payload.email, payload.upn, payload.unique_name].find(
      (value): value is string => typeof value === "string" && /^[^@\s]+@[^@\s]+$/.test(value),
    );
    const name = typeof payload.name === "string" ? payload.name : (email ?? String(payload.sub));
    return { name, ...(email && { email: email.toLowerCase() }) };
  }

  private async keySet(): Promise<ReturnType<typeof createLocalJWKSet>> {
    const now = (this.init.now ?? Date.now)();
    if (!this.keys || now - this.keys.fetchedAt > 3600_000) {
      const jwks = await this.init.fetchKeys(`${this.init.authorityHost}/${this.init.tenantId}/discovery/v2.0/keys`);
      this.keys = { jwks: createLocalJWKSet(jwks), fetchedAt: now };
    }
    return this.keys.jwks;
  }
}
