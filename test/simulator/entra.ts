import { type KeyObject, X509Certificate, constants, createHash, generateKeyPairSync, randomBytes, randomUUID, sign as cryptoSign, verify } from "node:crypto";
import { type Fixture, objectIdOf } from "./fixture";

/** A token names an Entra principal; Dataverse maps it to its systemuser (by object id, or application id). */
export interface IssuedToken {
  principal: { kind: "user"; objectId: string } | { kind: "application"; clientId: string };
  audience: string;
  expiresAt: number;
  clientId: string;
}

export interface HttpAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

const b64url = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/**
 * Entra ID as MSAL Node meets it: tenant OpenID metadata, instance discovery, and the v2.0 token endpoint
 * for the password and client-credentials grants (client secret or certificate-signed assertion).
 * Errors carry the AADSTS codes Entra ID answers with.
 */
export class EntraSimulator {
  readonly tokens = new Map<string, IssuedToken>();
  private readonly refreshTokens = new Map<string, { principal: IssuedToken["principal"]; clientId: string; idClaims: Record<string, string> }>();
  tokenLifetimeSeconds = 3600;

  constructor(
    private readonly fixture: Fixture,
    private readonly baseUrl: () => string,
    private readonly organizationUrl: () => string,
  ) {}

  handles(path: string): boolean {
    return (
      /^\/[^/]+\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/token|discovery\/instance|discovery\/v2\.0\/keys|discovery\/keys)$/.test(path) ||
      path.startsWith("/common/userrealm/")
    );
  }

  handle(method: string, path: string, form: URLSearchParams): HttpAnswer {
    const [, tenant = "", ...rest] = path.split("/");
    const endpoint = rest.join("/");
    if (path.startsWith("/common/userrealm/")) return { status: 200, body: { ver: "1.0", account_type: "Managed", domain_name: this.fixture.tenantDomain } };
    if (endpoint === "discovery/instance") return this.instanceDiscovery();
    if (!this.knowsTenant(tenant)) {
      return this.error(
        400,
        "invalid_request",
        90002,
        `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
      );
    }
    if (endpoint === "v2.0/.well-known/openid-configuration") return { status: 200, body: this.openIdConfiguration(tenant) };
    // The same keys sign v1 and v2 tokens; Entra ID publishes them at both addresses.
    if (endpoint === "discovery/v2.0/keys" || endpoint === "discovery/keys") return { status: 200, body: { keys: [this.signing().publicJwk] } };
    if (method !== "POST") return this.error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.");
    return this.token(tenant, form);
  }

  private signingKey: { privateKey: KeyObject; publicJwk: Record<string, unknown> } | undefined;

  /** The tenant's token signing key (made on first use), published at discovery/v2.0/keys. */
  private signing(): { privateKey: KeyObject; publicJwk: Record<string, unknown> } {
    if (!this.signingKey) {
      const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      this.signingKey = { privateKey, publicJwk: { ...publicKey.export({ format: "jwk" }), kid: "sim-key-1", use: "sig", alg: "RS256" } };
    }
    return this.signingKey;
  }

  /**
   * A signed v2.0 access token for a fixture user and an audience (an ERP front end's token for this app's
   * API), as Entra ID issues it: RS256 with the tenant's published key.
   */
  signedAccessToken(
    email: string,
    audience: string,
    options: { expiresInSeconds?: number; issuerTenant?: string; version?: "1.0" | "2.0"; claims?: Record<string, unknown> } = {},
  ): string {
    const user = this.fixture.users.find((candidate) => candidate.internalemailaddress.toLowerCase() === email.toLowerCase());
    if (!user) throw new Error(`No fixture user ${email}`);
    const now = Math.floor(Date.now() / 1000);
    return this.sign({
      ...this.userClaims(user, options.version ?? "2.0", options.issuerTenant),
      aud: audience,
      iat: now,
      nbf: now,
      exp: now + (options.expiresInSeconds ?? 3600),
      ...options.claims,
    });
  }

  /**
   * A user's claims in the token version's form (learn.microsoft.com/entra/identity-platform/access-token-claims-reference):
   * v1 is issued by https://sts.windows.net/<tenant>/ and names the user in upn and unique_name; v2 by
   * <authority>/<tenant>/v2.0, in preferred_username.
   */
  private userClaims(user: Fixture["users"][number], version: "1.0" | "2.0", tenant = this.fixture.tenantId): Record<string, unknown> {
    const common = { tid: this.fixture.tenantId, oid: objectIdOf(user), sub: objectIdOf(user), name: user.fullname, ver: version };
    return version === "1.0"
      ? { ...common, iss: `https://sts.windows.net/${tenant}/`, upn: user.internalemailaddress, unique_name: user.internalemailaddress }
      : { ...common, iss: `${this.baseUrl()}/${tenant}/v2.0`, preferred_username: user.internalemailaddress };
  }

  /** RS256 with the tenant's key, named by its kid: what a verifier finds at the tenant's keys address. */
  private sign(payload: Record<string, unknown>): string {
    const signingInput = `${b64url({ alg: "RS256", typ: "JWT", kid: "sim-key-1" })}.${b64url(payload)}`;
    const signature = cryptoSign("sha256", Buffer.from(signingInput), this.signing().privateKey).toString("base64url");
    return `${signingInput}.${signature}`;
  }

  tokenEndpoint(tenant = this.fixture.tenantId): string {
    return `${this.baseUrl()}/${tenant}/oauth2/v2.0/token`;
  }

  private knowsTenant(tenant: string): boolean {
    return [this.fixture.tenantId, this.fixture.tenantDomain, "organizations", "common"].includes(tenant.toLowerCase());
  }

  private openIdConfiguration(tenant: string) {
    const base = `${this.baseUrl()}/${tenant}`;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ["query", "fragment", "form_post"],
      subject_types_supported: ["pairwise"],
      id_token_signing_alg_values_supported: ["RS256"],
      response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
      scopes_supported: ["openid", "profile", "email", "offline_access"],
      issuer: `${this.baseUrl()}/${tenant === "organizations" || tenant === "common" ? "{tenantid}" : this.fixture.tenantId}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${this.baseUrl()}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ["sub", "iss", "aud", "exp", "iat", "oid", "tid", "preferred_username", "name"],
      tenant_region_scope: "EU",
      cloud_instance_name: new URL(this.baseUrl()).host,
      cloud_graph_host_name: "graph.windows.net",
      msgraph_host: "graph.microsoft.com",
    };
  }

  private instanceDiscovery(): HttpAnswer {
    const host = new URL(this.baseUrl()).host;
    return {
      status: 200,
      body: {
        tenant_discovery_endpoint: `${this.baseUrl()}/${this.fixture.tenantId}/v2.0/.well-known/openid-configuration`,
        "api-version": "1.1",
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      },
    };
  }

  private token(tenant: string, form: URLSearchParams): HttpAnswer {
    const grant = form.get("grant_type");
    const scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
    const resource = scopes.find((scope) => scope.endsWith("/.default") || scope.endsWith("/user_impersonation"));
    const audience = resource?.replace(/\/(\.default|user_impersonation)$/, "");
    if (!audience) return this.error(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid.");
    const api = this.fixture.exposedApis?.find(
      (candidate) => candidate.identifierUri.toLowerCase() === audience.toLowerCase() || candidate.clientId.toLowerCase() === audience.toLowerCase(),
    );
    if (!api && audience.replace(/\/$/, "").toLowerCase() !== this.organizationUrl().toLowerCase()) {
      return this.error(
        400,
        "invalid_resource",
        500011,
        `The resource principal named ${audience} was not found in the tenant named ${this.fixture.tenantDomain}.`,
      );
    }
    const clientId = (form.get("client_id") ?? "").toLowerCase();
    if (!clientId) return this.error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.");

    if (grant === "password") {
      const knownClient =
        this.fixture.publicClients.some((client) => client.clientId.toLowerCase() === clientId) ||
        this.fixture.applications.some((application) => application.clientId.toLowerCase() === clientId);
      if (!knownClient) return this.unknownApplication(clientId);
      const username = (form.get("username") ?? "").toLowerCase();
      const user = this.fixture.users.find((candidate) => candidate.internalemailaddress.toLowerCase() === username);
      if (!user)
        return this.error(
          400,
          "invalid_grant",
          50034,
          `The user account {EmailHidden} does not exist in the ${this.fixture.tenantDomain} directory. To sign into this application, the account must be added to the directory.`,
        );
      if (form.get("password") !== user.password)
        return this.error(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.");
      if (user.signIn === "mfa-required") {
        return this.error(
          400,
          "invalid_grant",
          50076,
          `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${audience}'.`,
          "basic_action",
        );
      }
      if (user.signIn === "conditional-access") {
        return this.error(
          400,
          "interaction_required",
          53003,
          "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
          "message_only",
        );
      }
      if (user.signIn === "external-challenge") {
        return this.error(
          400,
          "interaction_required",
          50158,
          "External security challenge not satisfied. User will be redirected to another page or authentication provider to satisfy additional authentication challenges.",
        );
      }
      return this.issue({ kind: "user", objectId: objectIdOf(user) }, audience, clientId, {
        name: user.fullname,
        preferred_username: user.internalemailaddress,
      });
    }
    if (grant === "refresh_token") {
      const session = this.refreshTokens.get(form.get("refresh_token") ?? "");
      if (!session || session.clientId !== clientId) return this.error(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.");
      return this.issue(session.principal, audience, clientId, session.idClaims);
    }
    if (grant === "client_credentials") {
      const application = this.fixture.applications.find((candidate) => candidate.clientId.toLowerCase() === clientId);
      if (!application) return this.unknownApplication(clientId);
      const secret = form.get("client_secret");
      const assertion = form.get("client_assertion");
      if (secret !== null) {
        if (secret !== application.clientSecret)
          return this.error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
          );
      } else if (assertion !== null) {
        const problem = this.checkAssertion(assertion, application.certificatePem, clientId, tenant);
        if (problem) return this.error(401, "invalid_client", 700027, problem);
      } else {
        return this.error(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
      }
      return this.issue({ kind: "application", clientId }, audience, clientId);
    }
    return this.error(400, "unsupported_grant_type", 70003, `The app requested an unsupported grant type '${grant}'.`);
  }

  private checkAssertion(assertion: string, certificatePem: string | undefined, clientId: string, tenant: string): string | undefined {
    if (!certificatePem) return "Client assertion contains an invalid signature. No certificate is registered for the application.";
    const [headerPart, payloadPart, signaturePart] = assertion.split(".");
    if (!headerPart || !payloadPart || !signaturePart) return "Client assertion is not a valid JWT.";
    const header = JSON.parse(Buffer.from(headerPart, "base64url").toString()) as { alg: string; x5t?: string; "x5t#S256"?: string };
    const payload = JSON.parse(Buffer.from(payloadPart, "base64url").toString()) as { aud: string; iss: string; sub: string; exp: number };
    const certificate = new X509Certificate(certificatePem);
    const der = certificate.raw;
    const expectedX5t = createHash("sha1").update(der).digest("base64url");
    const expectedX5tS256 = createHash("sha256").update(der).digest("base64url");
    if (header.x5t !== expectedX5t && header["x5t#S256"] !== expectedX5tS256) {
      return "Client assertion failed signature validation. The key was not found (thumbprint does not match a registered certificate).";
    }
    const data = Buffer.from(`${headerPart}.${payloadPart}`);
    const signature = Buffer.from(signaturePart, "base64url");
    const valid =
      header.alg === "PS256"
        ? verify("sha256", data, { key: certificate.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature)
        : verify("sha256", data, certificate.publicKey, signature);
    if (!valid) return "Client assertion failed signature validation.";
    if (payload.iss?.toLowerCase() !== clientId || payload.sub?.toLowerCase() !== clientId)
      return "The client assertion's issuer and subject must be the client id.";
    if (!String(payload.aud).startsWith(this.baseUrl())) return `The audience '${payload.aud}' of the client assertion is not valid.`;
    if (payload.exp * 1000 < Date.now()) return "The client assertion has expired.";
    void tenant;
    return undefined;
  }

  private unknownApplication(clientId: string): HttpAnswer {
    return this.error(
      400,
      "unauthorized_client",
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${this.fixture.tenantDomain}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    );
  }

  private issue(principal: IssuedToken["principal"], audience: string, clientId: string, idClaims?: Record<string, string>): HttpAnswer {
    const expiresAt = Date.now() + this.tokenLifetimeSeconds * 1000;
    const now = Math.floor(Date.now() / 1000);
    const oid = principal.kind === "user" ? principal.objectId : `5e7f1ce0${principal.clientId.slice(8)}`;
    // Dataverse takes v1 tokens; an exposed API gets the version its registration accepts, its audience in that form.
    const api = this.fixture.exposedApis?.find(
      (candidate) => candidate.identifierUri.toLowerCase() === audience.toLowerCase() || candidate.clientId.toLowerCase() === audience.toLowerCase(),
    );
    const version = api?.accessTokenVersion === 2 ? "2.0" : "1.0";
    const aud = api ? (version === "2.0" ? api.clientId : api.identifierUri) : audience;
    const user = principal.kind === "user" ? this.fixture.users.find((candidate) => objectIdOf(candidate) === principal.objectId) : undefined;
    const claims = {
      ...(user
        ? this.userClaims(user, version)
        : {
            iss: version === "1.0" ? `https://sts.windows.net/${this.fixture.tenantId}/` : `${this.baseUrl()}/${this.fixture.tenantId}/v2.0`,
            tid: this.fixture.tenantId,
            oid,
            sub: oid,
            ver: version,
          }),
      aud,
      ...(version === "1.0" ? { appid: clientId } : { azp: clientId }),
      iat: now,
      nbf: now,
      exp: Math.floor(expiresAt / 1000),
    };
    const accessToken = this.sign({ ...claims, jti: randomUUID() });
    this.tokens.set(accessToken, { principal, audience: audience.toLowerCase(), expiresAt, clientId });
    // Entra ID sends no scope for the client-credentials grant; MSAL then caches under the requested one.
    const body: Record<string, unknown> = {
      token_type: "Bearer",
      expires_in: this.tokenLifetimeSeconds,
      ext_expires_in: this.tokenLifetimeSeconds,
      access_token: accessToken,
    };
    if (idClaims) {
      body.scope = `${audience}/user_impersonation openid profile offline_access`;
      body.refresh_token = randomBytes(32).toString("base64url");
      this.refreshTokens.set(String(body.refresh_token), { principal, clientId, idClaims });
      body.id_token = this.sign({
        iss: `${this.baseUrl()}/${this.fixture.tenantId}/v2.0`,
        tid: this.fixture.tenantId,
        oid,
        sub: oid,
        iat: now,
        nbf: now,
        exp: Math.floor(expiresAt / 1000),
        aud: clientId,
        ...idClaims,
        ver: "2.0",
      });
      body.client_info = b64url({ uid: oid, utid: this.fixture.tenantId });
    }
    return { status: 200, body };
  }

  private error(status: number, error: string, code: number, description: string, suberror?: string): HttpAnswer {
    const traceId = randomUUID();
    const correlationId = randomUUID();
    const timestamp = new Date().toISOString().replace("T", " ").replace("Z", "Z");
    return {
      status,
      body: {
        error,
        error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
        error_codes: [code],
        timestamp,
        trace_id: traceId,
        correlation_id: correlationId,
        error_uri: `${this.baseUrl()}/error?code=${code}`,
        ...(suberror && { suberror }),
      },
    };
  }
}
