/**
 * User-facing texts of the connection setup, worded after the ERP's "Dynamics 365 for Sales Connection
 * Setup" (table 5330) so that its users recognize them. See ../shared/spec/BEHAVIOUR.md §1.
 */
export const setupMessages = {
  invalidUrl: "The value entered is not a valid URL.",
  httpsOnly: "The application is set up to support secure connections (HTTPS) to Dynamics 365 for Sales only. You cannot use HTTP.",
  invalidScheme: (scheme: string) =>
    `${scheme} is not a valid URI scheme for Dynamics 365 for Sales connections. You can only use HTTPS or HTTP as the scheme in the URL.`,
  urlWithCredentials: "The URL must not contain a user name or password. Enter them in their own fields.",
  urlReplaced: (entered: string, suggested: string) =>
    `The URL was not in the expected form and was replaced. Entered URL: "${entered}". Suggested URL: "${suggested}".`,
  userNameNeedsDomain: "The user name must include the domain when the authentication type is set to Active Directory or IFD (DOMAIN\\user).",
  userNameMustBeEmail: "The user name must be a valid email address when the authentication type is set to Office 365 or OAuth.",
  usersMustMapSwitchedOff: "The authentication type changed, so ERP users must map to CRM users was switched off.",
} as const;
