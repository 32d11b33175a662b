import type { HttpRequest } from "@azure/functions";
import { Problem } from "./problem";

import { type CallerPrincipal, platformAuthenticationEnabled } from "../caller";

export { type CallerPrincipal, platformAuthenticationEnabled };

const emailClaims = [
  "preferred_username",
  "email",
  "emails",
  "upn",
  "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
  "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
];

export function callerPrincipal(request: HttpRequest, env: NodeJS.ProcessEnv = process.env): CallerPrincipal | undefined {
  if (!platformAuthenticationEnabled(env)) return undefined;
  const header = request.headers.get("x-ms-client-principal");
  if (header) {
    try {
      const principal = JSON.parse(Buffer.from(header, "base64").toString("utf8")) as {
        userDetails?: string;
        claims?: { typ: string; val: string }[];
      };
      const fromClaims = principal.claims?.find((claim) => emailClaims.includes(claim.typ))?.val;
      const email = [fromClaims, principal.userDetails].find((value) => value && /^[^@\s]+@[^@\s]+$/.test(value));
      const name = principal.userDetails ?? email ?? "unknown user";
      return { name, ...(email && { email: email.toLowerCase() }) };
    } catch {
      return undefined;
    }
  }
  // App Service authentication also sets the name header; without the principal there is no email.
  const name = request.headers.get("x-ms-client-principal-name");
  return name ? { name, ...(/^[^@\s]+@[^@\s]+$/.test(name) && { email: name.toLowerCase() }) } : undefined;
}

/**
 * Who calls: behind App Service authentication, the principal it passes; otherwise, when the app is set up
 * to validate tokens (CALLER_TOKEN_*), the validated bearer token's user; otherwise nobody. A bearer token that
 * fails validation answers 401 rather than being ignored.
 */
export async function identifyCaller(
  request: HttpRequest,
  verifier: { verify(authorization: string | null): Promise<CallerPrincipal | undefined> } | undefined,
): Promise<CallerPrincipal | undefined> {
  if (platformAuthenticationEnabled()) return callerPrincipal(request);
  if (!verifier) return undefined;
  try {
    return await verifier.verify(request.headers.get("authorization"));
  } catch {
    throw new Problem(401, "Unauthorized.", "The bearer token is not valid for this app (issuer, audience, signature or lifetime).");
  }
}
