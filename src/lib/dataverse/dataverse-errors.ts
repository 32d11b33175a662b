import type { FailureStep } from "../model/failure-step";
import { TransportError } from "./https-transport";
import { SignInError } from "./token-provider";

/** Dataverse answered with an error ({"error":{"code","message"}}). */
export class DataverseRequestError extends Error {
  /** A $batch that stopped at a failing part answers 400 with the parts so far (multipart). */
  batchResponse?: { contentType: string; text: string };

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "DataverseRequestError";
  }

  get step(): FailureStep {
    if (this.status === 401) return "sign-in";
    if (this.status === 403) return "permission";
    if (this.status === 404) return "not-found";
    if (this.status === 429) return "throttled";
    if (this.status === 408) return "timeout";
    return this.status >= 500 ? "server" : "request";
  }
}

export function failureStep(error: unknown): FailureStep {
  if (error instanceof DataverseRequestError) return error.step;
  if (error instanceof SignInError) return error.kind;
  if (error instanceof TransportError) return error.kind;
  return "server";
}

const stepText: Record<FailureStep, string> = {
  settings: "The settings are incomplete",
  "outbound-guard": "The address is not allowed",
  dns: "Name resolution failed",
  tls: "The secure (TLS) connection failed",
  "sign-in": "Sign-in failed",
  permission: "Permission denied",
  "not-found": "Not found",
  throttled: "Dynamics 365 is throttling requests",
  timeout: "The request timed out",
  connection: "The connection failed",
  server: "Dynamics 365 returned a server error",
  request: "Dynamics 365 refused the request",
  unsupported: "The authentication type is not supported here",
};

/** "<step>: <what the service said>" for the test message; never includes credentials. */
export function describeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `${stepText[failureStep(error)]}: ${message}`;
}
