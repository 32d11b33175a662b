import type { HttpRequest } from "@azure/functions";

/** The signed-in ERP user as App Service authentication passes it (x-ms-client-principal). */
export interface CallerPrincipal {
  name: string;
  email?: string;
}

const emailClaims = ["preferred_username", "email", "emails", "upn", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"];

export function callerPrincipal(request: HttpRequest): CallerPrincipal | undefined {
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
