export const authenticationTypes = ["Office365", "OAuth", "ClientSecret", "Certificate", "AD", "IFD"] as const;
export type AuthenticationType = (typeof authenticationTypes)[number];

/** Dynamics 365 online, including the sovereign clouds (US government, China). */
const onlineDomains = ["dynamics.com", "microsoftdynamics.us", "appsplatform.us", "dynamics.cn", "microsoftdynamics.de"];

export function isOnlineHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return onlineDomains.some((domain) => host === domain || host.endsWith(`.${domain}`));
}

/** As the ERP does: Office 365 for online hosts, Active Directory for anything else (on-premises). */
export function defaultAuthenticationType(serverAddress: string): AuthenticationType {
  return isOnlineHost(new URL(serverAddress).hostname) ? "Office365" : "AD";
}

export function parseAuthenticationType(value: string): AuthenticationType | undefined {
  const wanted = value.trim().toLowerCase();
  return authenticationTypes.find((type) => type.toLowerCase() === wanted);
}

/** Which credentials each type signs in with. */
export const credentialKind = {
  Office365: "user",
  OAuth: "user",
  AD: "user",
  IFD: "user",
  ClientSecret: "clientSecret",
  Certificate: "certificate",
} as const satisfies Record<AuthenticationType, "user" | "clientSecret" | "certificate">;

export const usesEmailUserName = (type: AuthenticationType) => type === "Office365" || type === "OAuth";
export const usesDomainUserName = (type: AuthenticationType) => type === "AD" || type === "IFD";
