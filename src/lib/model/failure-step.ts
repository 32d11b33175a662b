/** Where a Dataverse call failed, in the words the connection test uses (BEHAVIOUR §2). */
export type FailureStep =
  | "settings"
  | "outbound-guard"
  | "dns"
  | "tls"
  | "sign-in"
  | "permission"
  | "not-found"
  | "throttled"
  | "timeout"
  | "connection"
  | "server"
  | "request"
  | "unsupported";
