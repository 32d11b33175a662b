/**
 * Who calls, as the domain needs it: the signed-in ERP user (from App Service authentication or the user's
 * own Entra ID token; http/caller-principal.ts reads it from the request).
 */
export interface CallerPrincipal {
  name: string;
  email?: string;
}

/**
 * Whether the platform's authentication (App Service "Easy Auth") is on: only then does the front end strip
 * any x-ms-client-principal a client sends and set it from a validated sign-in. Without it the header is
 * whatever the caller typed, so it is not trusted.
 */
export function platformAuthenticationEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.WEBSITE_AUTH_ENABLED ?? "").toLowerCase() === "true";
}
