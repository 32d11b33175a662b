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

  get issuer(): string {
    return `${this.init.authorityHost}/${this.init.tenantId}/v2.0`;
  }

  /** The caller, or undefined when there is no token; a token that fails validation throws (401). */
  async verify(authorization: string | null): Promise<CallerPrincipal | undefined> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    if (!token) return undefined;
    const { payload } = await jwtVerify(token, await this.keySet(), {
      issuer: this.issuer,
      audience: this.init.audience,
      algorithms: ["RS256"],
      clockTolerance: 60,
    });
    const email = [payload.preferred_username, payload.email, payload.upn].find(
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
