import type { HttpResponseInit } from "@azure/functions";
import { type FieldError, Refusal, type RefusalKind, fieldErrorsFromZod } from "../errors";

export { type FieldError, fieldErrorsFromZod };

/** An RFC 9457 problem; thrown by use cases and turned into a response in one place. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: FieldError[] = [],
    readonly type: string = problemType(status),
    /** RFC 9457 extension members, e.g. the failed connection test. */
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = "Problem";
  }
}

const typeSlugs: Record<number, string> = {
  400: "validation-error",
  403: "forbidden",
  404: "not-found",
  409: "conflict",
  412: "precondition-failed",
  422: "unprocessable",
  500: "internal-error",
};

function problemType(status: number): string {
  return `urn:d365-sales-connector:problem:${typeSlugs[status] ?? String(status)}`;
}

export const badRequest = (errors: FieldError[], detail = describeErrors(errors)) => new Problem(400, "The request is not valid.", detail, errors);
export const notFound = (detail: string) => new Problem(404, "Not found.", detail);
export const conflict = (detail: string, extensions: Record<string, unknown> = {}) => new Problem(409, "Conflict.", detail, [], problemType(409), extensions);
export const unprocessable = (detail: string, extensions: Record<string, unknown> = {}) =>
  new Problem(422, "The request cannot be carried out.", detail, [], problemType(422), extensions);
export const forbidden = (detail: string) => new Problem(403, "Forbidden.", detail);
export const preconditionFailed = (detail: string) => new Problem(412, "Precondition failed.", detail);

function describeErrors(errors: FieldError[]): string {
  return errors.map((error) => `${error.path || "body"}: ${error.message}`).join(" ");
}

/** A domain refusal as HTTP: its kind decides the status. */
export function problemOf(refusal: Refusal): Problem {
  const statuses: Record<RefusalKind, [number, string]> = {
    invalid: [400, "The request is not valid."],
    "not-found": [404, "Not found."],
    conflict: [409, "Conflict."],
    stale: [412, "Precondition failed."],
    forbidden: [403, "Forbidden."],
    unprocessable: [422, "The request cannot be carried out."],
    unauthorized: [401, "Unauthorized."],
  };
  const [status, title] = statuses[refusal.kind];
  return new Problem(status, title, refusal.message, refusal.errors, problemType(status), refusal.extensions);
}

export function problemResponse(problem: Problem): HttpResponseInit {
  return {
    status: problem.status,
    headers: { "content-type": "application/problem+json" },
    body: JSON.stringify({
      type: problem.type,
      title: problem.title,
      status: problem.status,
      detail: problem.detail,
      ...(problem.errors.length > 0 ? { errors: problem.errors } : {}),
      ...problem.extensions,
    }),
  };
}
